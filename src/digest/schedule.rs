//! The built-in digest scheduler of `serve`: every `digest.check_interval_seconds` it runs
//! the digest of the current week for each tenant whose `digestEnabled` is on and whose
//! send time (day, hour and zone from its settings) has come within the last
//! `digest.catch_up_hours`. Each tenant's week runs once across every instance on the
//! database ([`crate::db::jobs`]): the instance that claims it runs it, the others skip it,
//! and a run whose instance died is taken over once its claim runs out. Runs are idempotent
//! per (tenant, guardian, week) besides, so a run taken over queues only what is missing.
//! `parent-connection digest run` runs a week at any time, for an external cron.

use super::{NoProgress, RunRequest, compose::DEFAULT_PAGE_SIZE, week::IsoWeek};
use crate::config::Config;
use crate::db::jobs::{self, Job};
use crate::tenants;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use std::time::Duration;

/// Runs every tenant's digest that is due at `now` and that no instance has run (or is
/// running); returns (tenant slug, queued) pairs of the runs this call made.
pub async fn run_due(
    db_conn: &DatabaseConnection,
    catch_up: chrono::Duration,
    now: DateTime<Utc>,
    links: &crate::links::Links,
) -> Result<Vec<(String, u64)>, super::DigestError> {
    let mut done = Vec::new();
    for found in tenants::all(db_conn).await? {
        let tenant = match found {
            Ok(tenant) => tenant,
            Err(e) => {
                tracing::warn!(error = %e, "digest: cannot read a tenant");
                continue;
            }
        };
        let slug = tenant.slug.clone();
        if !tenant.settings.digest_enabled {
            continue;
        }
        let (schedule, _) = super::windows(&tenant, None)?;
        let week = IsoWeek::current(schedule.zone, now);
        let windows = schedule.windows(week);
        if now < windows.send_at || now - windows.send_at > catch_up {
            continue;
        }
        let request = RunRequest {
            week: Some(week),
            dry_run: false,
            sample_size: 0,
            page_size: DEFAULT_PAGE_SIZE,
        };
        let key = format!("{}:{week}", tenant.id.0);
        let run = super::run(db_conn, &tenant, request, &NoProgress, links);
        let Some(report) = jobs::run_once(db_conn, (Job::Digest, &key), jobs::LEASE, run).await?
        else {
            continue;
        };
        if report.queued > 0 {
            tracing::info!(tenant = %slug, week = %report.week, queued = report.queued, "digest queued");
        }
        done.push((slug, report.queued));
    }
    Ok(done)
}

/// Starts the scheduler unless `digest.schedule_in_serve` is off.
pub fn spawn(
    db_conn: DatabaseConnection,
    config: Arc<Config>,
) -> Option<tokio::task::JoinHandle<()>> {
    if !config.digest.schedule_in_serve {
        return None;
    }
    let interval = Duration::from_secs(config.digest.check_interval_seconds.max(10));
    let catch_up = chrono::Duration::hours(config.digest.catch_up_hours.max(1) as i64);
    let links = crate::links::Links::from_config(&config);
    Some(tokio::spawn(async move {
        loop {
            if let Err(e) = run_due(&db_conn, catch_up, Utc::now(), &links).await {
                tracing::warn!(error = %e, "digest scheduler round failed; retrying later");
            }
            tokio::time::sleep(interval).await;
        }
    }))
}
