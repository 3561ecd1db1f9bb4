//! sea-orm entities: table shapes only, no logic. Bulk sync work uses set-based SQL over the
//! same tables (see `sync::reconcile`).

pub mod assignments;
pub mod audit_log;
pub mod chat_banners;
pub mod chat_blocks;
pub mod chat_members;
pub mod chats;
pub mod class_digest_settings;
pub mod classes;
pub mod contact_erasures;
pub mod contact_requests;
pub mod contacts;
pub mod digest_deliveries;
pub mod digest_runs;
pub mod digest_unsubscribes;
pub mod disclosure_students;
pub mod disclosures;
pub mod email_suppressions;
pub mod enrollments;
pub mod invitations;
pub mod link_restrictions;
pub mod oidc_attempts;
pub mod oneroster_connections;
pub mod outbox;
pub mod scheduled_runs;
pub mod schools;
pub mod sign_in_codes;
pub mod sms_opt_outs;
pub mod staff;
pub mod student_contacts;
pub mod students;
pub mod sync_run;
pub mod tenant;
pub mod tenant_settings;
pub mod web_sessions;
