//! Database migrations for Parent Connection.
//!
//! Every migration is written with the sea-query builder so the same files run on SQLite
//! (the embedded default) and PostgreSQL (production). The application runs them itself on
//! start (`parent-connection serve`) or on demand (`parent-connection migrate`).

pub use sea_orm_migration::prelude::*;

mod columns;
mod m20261123_000001_initial;
mod m20261123_000002_sync_hashes;
mod m20261201_000003_approvals;
mod m20261201_000004_oneroster;
mod m20261201_000005_chats;
mod m20261201_000006_invitations;
mod m20261201_000007_assignments;
mod m20261201_000008_digest_deliveries;
mod m20261201_000009_email_suppressions;
mod m20261201_000010_digest_handoff;
mod m20261208_000011_join_links;
mod m20261208_000012_digest_unsubscribes;
mod m20261215_000013_keyset_indexes;
mod m20261215_000014_request_indexes;
mod m20261222_000015_web_sessions;
mod m20261222_000016_oidc_attempts;
mod m20261222_000017_sign_in_codes;
mod m20261229_000018_request_student_index;
mod m20270105_000019_erasure_privacy;
mod m20270105_000020_request_matches;
mod m20270105_000021_consent_disclosures;
mod m20270112_000022_instances;
mod m20270119_000023_disclosure_text;
mod m20270126_000024_link_restrictions;
mod m20270126_000025_quiet_hours;
mod m20270126_000026_languages;
mod m20270126_000027_language_provenance;

/// The ordered list of migrations.
pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_initial::Migration),
            Box::new(m20261123_000002_sync_hashes::Migration),
            Box::new(m20261201_000003_approvals::Migration),
            Box::new(m20261201_000004_oneroster::Migration),
            Box::new(m20261201_000005_chats::Migration),
            Box::new(m20261201_000006_invitations::Migration),
            Box::new(m20261201_000007_assignments::Migration),
            Box::new(m20261201_000008_digest_deliveries::Migration),
            Box::new(m20261201_000009_email_suppressions::Migration),
            Box::new(m20261201_000010_digest_handoff::Migration),
            Box::new(m20261208_000011_join_links::Migration),
            Box::new(m20261208_000012_digest_unsubscribes::Migration),
            Box::new(m20261215_000013_keyset_indexes::Migration),
            Box::new(m20261215_000014_request_indexes::Migration),
            Box::new(m20261222_000015_web_sessions::Migration),
            Box::new(m20261222_000016_oidc_attempts::Migration),
            Box::new(m20261222_000017_sign_in_codes::Migration),
            Box::new(m20261229_000018_request_student_index::Migration),
            Box::new(m20270105_000019_erasure_privacy::Migration),
            Box::new(m20270105_000020_request_matches::Migration),
            Box::new(m20270105_000021_consent_disclosures::Migration),
            Box::new(m20270112_000022_instances::Migration),
            Box::new(m20270119_000023_disclosure_text::Migration),
            Box::new(m20270126_000024_link_restrictions::Migration),
            Box::new(m20270126_000025_quiet_hours::Migration),
            Box::new(m20270126_000026_languages::Migration),
            Box::new(m20270126_000027_language_provenance::Migration),
        ]
    }
}
