//! `parent-connection assignments import`, `parent-connection digest run`, and the digest's
//! unsubscribes (`digest unsubscribes`, `digest resubscribe`).

use super::{Failure, open, out_raw};
use crate::assignments::import::{self, ImportStatus};
use crate::config::Config;
use crate::digest::compose::DEFAULT_PAGE_SIZE;
use crate::digest::unsubscribe;
use crate::digest::week::IsoWeek;
use crate::digest::{self, RunProgress, RunRequest};
use crate::{audit, tenants};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::PathBuf;

/// `assignments` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AssignmentsCommand {
    /// Create or update assignments from one CSV file with the header
    /// classSourcedId,externalId,title,dueAt,points,instructions (points and instructions
    /// optional; dueAt RFC 3339 with an offset). All-or-nothing: any error refuses the
    /// whole file. Exit status: 0 applied (or would be, with --dry-run), 2 refused, 1 could
    /// not run.
    Import {
        /// Tenant slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// The CSV file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Check and count everything, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `digest` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DigestCommand {
    /// Compose and queue the weekly digest of one week for a tenant (for an external cron;
    /// `serve` also schedules it).
    ///
    /// Each guardian with something to report gets one digest per week, recorded in one
    /// statement and handed to the outbox by the dispatcher a batch at a time: re-running,
    /// running twice at once, or re-running after a crash never queues a second one. --dry-run composes, counts and shows the
    /// first rendered emails, and queues nothing. A tenant whose digest-enabled is false
    /// gets nothing (exit 1).
    Run {
        /// Tenant slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// ISO week, e.g. 2026-W48 (default: the current week in the tenant's time zone).
        #[arg(long, value_name = "YYYY-Www")]
        week: Option<IsoWeek>,
        /// Compose and count, queue nothing.
        #[arg(long)]
        dry_run: bool,
        /// Rendered digests shown in the report.
        #[arg(long, value_name = "N", default_value_t = 3)]
        sample: usize,
        /// Guardians composed per page (memory grows with it).
        #[arg(long, value_name = "N", default_value_t = DEFAULT_PAGE_SIZE,
              value_parser = clap::value_parser!(u64).range(1..))]
        page_size: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the guardians unsubscribed from the weekly digest (by the link in a digest, or
    /// by an admin), in contact order.
    Unsubscribes {
        /// Tenant slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lift a guardian's digest unsubscribe: later digests include them again (audited).
    /// Exit status 1 when the guardian was not unsubscribed.
    Resubscribe {
        /// Tenant slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// The guardian's contact id.
        #[arg(long, value_name = "ID")]
        contact: i64,
    },
}

/// A bar over the guardians composed (drawn on standard error only on a terminal).
struct DigestBar(ProgressBar);

impl RunProgress for DigestBar {
    fn queueing(&self) {
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            self.0.set_style(style);
        }
        self.0
            .set_message("queueing this week's digests (one set-based statement)");
        self.0
            .enable_steady_tick(std::time::Duration::from_millis(120));
    }

    fn start(&self, total: u64) {
        self.0.set_length(total);
        if let Ok(style) =
            ProgressStyle::with_template("composing [{bar:40}] {pos}/{len} guardians ({eta})")
        {
            self.0.set_style(style.progress_chars("=> "));
        }
    }

    fn advance(&self, n: u64) {
        self.0.inc(n);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Runs an `assignments` subcommand.
pub(super) async fn assignments(
    command: AssignmentsCommand,
    config: &Config,
) -> Result<(), Failure> {
    let AssignmentsCommand::Import {
        tenant,
        file,
        dry_run,
        json,
    } = command;
    if !file.is_file() {
        return Err(Failure::from(format!(
            "the assignments file {} does not exist or is not a file",
            file.display()
        )));
    }
    let conn = open(config).await?;
    let tenant = tenants::find(&conn, &tenant).await?;
    let bar = super::progress::ImportBar::new();
    let report = import::run(
        &conn,
        &config.import,
        tenant.id,
        &file,
        dry_run,
        &audit::cli_actor(),
        &bar,
    )
    .await?;
    if json {
        out_raw(&format!("{}\n", serde_json::to_string_pretty(&report)?));
    } else {
        out_raw(&report.to_human());
    }
    if report.status == ImportStatus::Refused {
        let first = report
            .errors
            .first()
            .map(|e| e.to_string())
            .unwrap_or_default();
        return Err(Failure {
            code: 2,
            message: format!(
                "assignments import refused ({} error(s)); first: {first}",
                report.errors.len()
            ),
        });
    }
    Ok(())
}

/// Runs a `digest` subcommand.
pub(super) async fn run(command: DigestCommand, config: &Config) -> Result<(), Failure> {
    let (tenant, week, dry_run, sample, page_size, json) = match command {
        DigestCommand::Run {
            tenant,
            week,
            dry_run,
            sample,
            page_size,
            json,
        } => (tenant, week, dry_run, sample, page_size, json),
        DigestCommand::Unsubscribes { tenant, json } => {
            return unsubscribes(&tenant, json, config).await;
        }
        DigestCommand::Resubscribe { tenant, contact } => {
            return resubscribe(&tenant, contact, config).await;
        }
    };
    let conn = open(config).await?;
    let tenant = tenants::find(&conn, &tenant).await?;
    let bar = DigestBar(ProgressBar::with_draw_target(
        Some(0),
        ProgressDrawTarget::stderr(),
    ));
    let request = RunRequest {
        week,
        dry_run,
        sample_size: sample,
        page_size,
    };
    let links = crate::links::Links::from_config(config);
    let report = digest::run(&conn, &tenant, request, &bar, &links).await?;
    if json {
        out_raw(&format!("{}\n", serde_json::to_string_pretty(&report)?));
    } else {
        out_raw(&report.to_human());
    }
    Ok(())
}

/// `digest unsubscribes`: every unsubscribed guardian of the tenant.
async fn unsubscribes(tenant: &str, json: bool, config: &Config) -> Result<(), Failure> {
    let conn = open(config).await?;
    let tenant = tenants::find(&conn, tenant).await?;
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let (items, next) = unsubscribe::list(&conn, tenant.id, after, 1000).await?;
        all.extend(items);
        match next.and_then(|n| n.parse::<i64>().ok()) {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if json {
        out_raw(&format!("{}\n", serde_json::to_string_pretty(&all)?));
        return Ok(());
    }
    if all.is_empty() {
        out_raw("no guardian is unsubscribed from the digest\n");
    }
    for item in &all {
        out_raw(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            item.contact_id,
            item.display_name,
            item.email_address.as_deref().unwrap_or("-"),
            item.source,
            item.unsubscribed_at.to_rfc3339()
        ));
    }
    Ok(())
}

/// `digest resubscribe`: lifts one guardian's unsubscribe.
async fn resubscribe(tenant: &str, contact: i64, config: &Config) -> Result<(), Failure> {
    let conn = open(config).await?;
    let tenant = tenants::find(&conn, tenant).await?;
    if unsubscribe::resubscribe(&conn, tenant.id, contact, &audit::cli_actor()).await? {
        out_raw(&format!(
            "contact {contact} receives the weekly digest again\n"
        ));
        Ok(())
    } else {
        Err(Failure {
            code: 1,
            message: format!("contact {contact} is not unsubscribed from the digest"),
        })
    }
}
