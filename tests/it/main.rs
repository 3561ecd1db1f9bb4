//! The integration suite: one binary, one module per area. Every database test runs twice,
//! on SQLite and on PostgreSQL (`TEST_DATABASE_URL`; see README.md).

mod api_support;
mod architecture;
mod browser_support;
mod oneroster_server;
mod outbox_support;
mod support;

mod api_access;
mod api_auth;
mod api_cli;
mod api_errors;
mod api_imports;
mod approvals;
mod assignments;
mod busy_writes;
mod chats;
mod edits_and_sync;
mod entities;
mod graph_sdk;
mod invitations;
mod rate_limits;
mod web_approvals;
mod web_digest;
mod web_guardian;
mod web_imports;
mod web_oneroster;
mod web_outbox;
mod web_session;
mod web_teacher;

mod bad_files;
mod browser;
mod browser_approvals;
mod browser_guardian;
mod browser_teacher;
mod cli;
mod config_cli;
mod diffed;
mod digest;
mod digest_delivery;
mod disclosures;
mod import_v1;
mod import_v21;
mod links_mail;
mod oidc;
mod oneroster;
mod outbox_port;
mod scale;
mod sds_values;
mod sms_consent;
mod sms_prism;
