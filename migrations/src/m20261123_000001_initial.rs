//! The canonical model of SPEC §2: tenants and their settings, the roster (schools,
//! students, staff, classes, enrollments), contacts with per-field provenance, student–contact
//! links, sync runs and the audit log.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Initial schema.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000001_initial"
    }
}

/// Fields of a contact that carry provenance. Each one gets four columns: the current value,
/// where it came from (`sync` | `approved_edit` | `admin`), when that change happened, and the
/// value the last sync delivered (the latest-change-wins bookkeeping of SPEC §3.3).
const CONTACT_FIELDS: [&str; 4] = ["given_name", "family_name", "email", "mobile_phone"];

fn provenance_columns(table: &mut TableCreateStatement, field: &'static str) {
    let column = |suffix: &str| Alias::new(format!("{field}{suffix}"));
    table
        .col(text_null(field))
        .col(text_null(column("_provenance")))
        .col(ts_null(column("_changed_at")))
        .col(text_null(column("_sync")));
}

/// A roster table keyed by `(tenant_id, source_id)` with an active/inactive status.
fn roster_table(name: &'static str, extra: &[ColumnDef]) -> TableCreateStatement {
    let mut table = Table::create();
    table
        .table(name)
        .col(pk())
        .col(big("tenant_id"))
        .col(text("source_id"));
    for column in extra {
        table.col(column.clone());
    }
    table
        .col(text("status"))
        .col(ts("created_at"))
        .col(ts("updated_at"))
        .col(ts_null("deactivated_at"))
        .foreign_key(&mut fk(name, "tenant_id", "tenants"))
        .to_owned()
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("tenants")
                    .col(pk())
                    .col(text("slug"))
                    .col(text("name"))
                    .col(text("region"))
                    .col(ts("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("tenants", &["slug"], true))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("tenant_settings")
                    .col(
                        ColumnDef::new("tenant_id")
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(text("preferred_invite_channel").default("email"))
                    .col(
                        ColumnDef::new("update_parent_information")
                            .boolean()
                            .not_null()
                            .default(true),
                    )
                    .col(
                        ColumnDef::new("digest_enabled")
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new("deletion_guard_percent")
                            .integer()
                            .not_null()
                            .default(20),
                    )
                    .col(ts("updated_at"))
                    .foreign_key(&mut fk("tenant_settings", "tenant_id", "tenants"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(roster_table("schools", &[text_null("name")]))
            .await?;
        manager
            .create_table(roster_table(
                "students",
                &[text_null("given_name"), text_null("family_name")],
            ))
            .await?;
        manager
            .create_table(roster_table(
                "staff",
                &[
                    text_null("given_name"),
                    text_null("family_name"),
                    text_null("email"),
                    text("role"),
                ],
            ))
            .await?;
        manager
            .create_table(roster_table(
                "classes",
                &[text_null("school_source_id"), text_null("title")],
            ))
            .await?;
        for table in ["schools", "students", "staff", "classes"] {
            manager
                .create_index(index(table, &["tenant_id", "source_id"], true))
                .await?;
        }

        // `person_id` is students.id when role = 'student' and staff.id when role = 'teacher'.
        manager
            .create_table(
                Table::create()
                    .table("enrollments")
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(big("class_id"))
                    .col(text("role"))
                    .col(big("person_id"))
                    .col(text("status"))
                    .col(ts("created_at"))
                    .col(ts("updated_at"))
                    .col(ts_null("deactivated_at"))
                    .foreign_key(&mut fk("enrollments", "tenant_id", "tenants"))
                    .foreign_key(&mut fk("enrollments", "class_id", "classes"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "enrollments",
                &["class_id", "role", "person_id"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "enrollments",
                &["tenant_id", "role", "person_id"],
                false,
            ))
            .await?;

        let mut contacts = Table::create();
        contacts
            .table("contacts")
            .col(pk())
            .col(big("tenant_id"))
            .col(text("source_key"))
            .col(text_null("source_id"));
        for field in CONTACT_FIELDS {
            provenance_columns(&mut contacts, field);
        }
        contacts
            .col(ts("created_at"))
            .col(ts("updated_at"))
            .foreign_key(&mut fk("contacts", "tenant_id", "tenants"));
        manager.create_table(contacts.to_owned()).await?;
        manager
            .create_index(index("contacts", &["tenant_id", "source_key"], true))
            .await?;

        let mut links = Table::create();
        links
            .table("student_contacts")
            .col(pk())
            .col(big("tenant_id"))
            .col(big("student_id"))
            .col(big("contact_id"));
        provenance_columns(&mut links, "relationship");
        links
            .col(text("status"))
            .col(ts("first_seen_at"))
            .col(ts("last_seen_at"))
            .col(ts_null("deactivated_at"))
            .col(ts("updated_at"))
            .foreign_key(&mut fk("student_contacts", "tenant_id", "tenants"))
            .foreign_key(&mut fk("student_contacts", "student_id", "students"))
            .foreign_key(&mut fk("student_contacts", "contact_id", "contacts"));
        manager.create_table(links.to_owned()).await?;
        manager
            .create_index(index(
                "student_contacts",
                &["student_id", "contact_id"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "student_contacts",
                &["tenant_id", "contact_id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("sync_runs")
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(text("format"))
                    .col(text("source"))
                    .col(text("status"))
                    .col(
                        ColumnDef::new("dry_run")
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ColumnDef::new("forced").boolean().not_null().default(false))
                    .col(ts("started_at"))
                    .col(ts("finished_at"))
                    .col(counter("created"))
                    .col(counter("updated"))
                    .col(counter("unchanged"))
                    .col(counter("reactivated"))
                    .col(counter("deactivated"))
                    .col(counter("rejected"))
                    .col(counter("error_count"))
                    .col(counter("warning_count"))
                    .col(text("report"))
                    .foreign_key(&mut fk("sync_runs", "tenant_id", "tenants"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("sync_runs", &["tenant_id", "started_at"], false))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("audit_log")
                    .col(pk())
                    .col(big_null("tenant_id"))
                    .col(text("actor"))
                    .col(text("action"))
                    .col(text_null("target"))
                    .col(text_null("before"))
                    .col(text_null("after"))
                    .col(ts("at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("audit_log", &["tenant_id", "at"], false))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "audit_log",
            "sync_runs",
            "student_contacts",
            "contacts",
            "enrollments",
            "classes",
            "staff",
            "students",
            "schools",
            "tenant_settings",
            "tenants",
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
