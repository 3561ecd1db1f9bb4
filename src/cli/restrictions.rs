//! `parent-connection restriction add|lift|list`: per-child restrictions of a contact
//! (custody, a court order) through the same audited service as
//! `POST|DELETE /api/v1/students/{sourceId}/contacts/{contactId}/restriction`
//! (docs/restrictions.md).

use super::{Failure, open, out_raw};
use crate::config::Config;
use crate::domain::Reason;
use crate::restrictions::{self, RestrictRequest, Restriction};
use crate::{audit, tenants};

/// `restriction` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RestrictionCommand {
    /// Restrict one student–contact link: teachers no longer see the contact about this
    /// student, it gets no invitation and no digest section for the child, and cannot be
    /// added to a chat about them. Syncs never lift it. A link already restricted has its
    /// restriction replaced.
    Add {
        /// Tenant slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// The student's SIS id (sourcedId).
        #[arg(long, value_name = "SOURCE_ID")]
        student: String,
        /// The contact's id (as `contacts --all --json` shows it).
        #[arg(long, value_name = "CONTACT_ID")]
        contact: i64,
        /// Why (required; kept with the restriction and in the audit log; admins only).
        #[arg(long)]
        reason: String,
        /// When it ends by itself: a date (the start of that day in the tenant's time zone)
        /// or an RFC 3339 time with offset. Default: no end.
        #[arg(long, value_name = "DATE|TIME")]
        until: Option<String>,
        /// Print the restriction as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lift the restriction of one student–contact link.
    Lift {
        /// Tenant slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// The student's SIS id (sourcedId).
        #[arg(long, value_name = "SOURCE_ID")]
        student: String,
        /// The contact's id.
        #[arg(long, value_name = "CONTACT_ID")]
        contact: i64,
        /// Print the lifted restriction as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List a student's restrictions, in force and ended, newest first.
    List {
        /// Tenant slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// The student's SIS id (sourcedId).
        #[arg(long, value_name = "SOURCE_ID")]
        student: String,
        /// How many, newest first.
        #[arg(long, default_value_t = 50)]
        limit: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn line(r: &Restriction) -> String {
    let until = r
        .until
        .map(|u| format!(" until {}", u.to_rfc3339()))
        .unwrap_or_default();
    let state = match (&r.ended_by, r.ended_at) {
        (Some(by), Some(at)) => format!("ended {} by {by}", at.to_rfc3339()),
        _ => "in force".to_string(),
    };
    format!(
        "restriction {} of contact {} about {}: {state}; by {} at {}{until}; reason: {}\n",
        r.id,
        r.contact_id,
        r.student_id,
        r.restricted_by,
        r.restricted_at.to_rfc3339(),
        r.reason
    )
}

fn print(r: &Restriction, json: bool) -> Result<(), Failure> {
    if json {
        out_raw(&format!("{}\n", serde_json::to_string_pretty(r)?));
    } else {
        out_raw(&line(r));
    }
    Ok(())
}

/// Runs a `restriction` subcommand.
pub(super) async fn run(command: RestrictionCommand, config: &Config) -> Result<(), Failure> {
    match command {
        RestrictionCommand::Add {
            tenant,
            student,
            contact,
            reason,
            until,
            json,
        } => {
            let reason =
                Reason::parse(&reason).map_err(|e| Failure::usage(format!("--reason: {e}")))?;
            let conn = open(config).await?;
            let tenant = tenants::find(&conn, &tenant).await?;
            let until = restrictions::parse_until(
                until.as_deref().unwrap_or(""),
                tenant.settings.digest_time_zone,
            )
            .map_err(|e| Failure::usage(format!("--until: {e}")))?;
            let restriction = restrictions::restrict(
                &conn,
                RestrictRequest {
                    tenant: tenant.id,
                    student_source_id: &student,
                    contact_id: contact,
                    actor: &audit::cli_actor(),
                    reason,
                    until,
                },
            )
            .await?;
            print(&restriction, json)
        }
        RestrictionCommand::Lift {
            tenant,
            student,
            contact,
            json,
        } => {
            let conn = open(config).await?;
            let tenant = tenants::find(&conn, &tenant).await?;
            let lifted =
                restrictions::lift(&conn, tenant.id, &student, contact, &audit::cli_actor())
                    .await?;
            print(&lifted, json)
        }
        RestrictionCommand::List {
            tenant,
            student,
            limit,
            json,
        } => {
            let conn = open(config).await?;
            let tenant = tenants::find(&conn, &tenant).await?;
            let (items, _) =
                restrictions::history(&conn, tenant.id, &student, None, limit.max(1)).await?;
            if json {
                out_raw(&format!("{}\n", serde_json::to_string_pretty(&items)?));
            } else if items.is_empty() {
                out_raw(&format!("no restrictions of {student}\n"));
            } else {
                for r in &items {
                    out_raw(&line(r));
                }
            }
            Ok(())
        }
    }
}
