//! The weekly assignment digest (SPEC §6): the calendar ([`week`]), composition
//! ([`compose`]), plain-text rendering ([`render`]), delivery through the outbox
//! ([`deliver`]) and the built-in scheduler ([`schedule`]).
//!
//! A dry run composes every digest of a week page by page, counts them and renders a
//! sample, writing nothing. A real run records, in one set-based statement, one pending
//! `digest_deliveries` row per guardian and week — unique, so a re-run, a second instance
//! running at the same time, or a run restarted after a crash never queues a second digest
//! for the same week. Dispatchers hand pending deliveries to the outbox a batch at a time,
//! render each email when they send it, and drop a sent digest's outbox row once its
//! delivery row records the send ([`deliver`]). The delivery rows are the disclosure log:
//! who received a digest about which students, and when.

pub(crate) mod compose;
pub(crate) mod deliver;
pub(crate) mod render;
pub(crate) mod schedule;
pub(crate) mod unsubscribe;
pub(crate) mod week;

pub use compose::{ChildDigest, ClassDigest, Composer, Digest, DueItem};
pub use deliver::{Delivery, DigestMessages};
pub use schedule::run_due;
pub use unsubscribe::{
    Source as UnsubscribeSource, Unsubscribe, secret as unsubscribe_secret, unsubscribe,
};
pub use week::{CalendarError, IsoWeek, Schedule, Window, Windows};

use crate::tenants::Tenant;
use sea_orm::{DatabaseConnection, DbErr};
use serde::Serialize;

/// Why a digest run could not go ahead.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// A week, day, hour or zone does not parse (the message says what would).
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    /// The tenant's `digestEnabled` switch is off.
    #[error(
        "the weekly digest is off for this tenant (digest-enabled = false); nothing was queued"
    )]
    Disabled,
    /// The template failed.
    #[error("rendering failed: {0}")]
    Render(#[from] askama::Error),
    /// Database failure.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// Reports how far a run is.
pub trait RunProgress: Send + Sync {
    /// A real run is queueing every digest in one statement (no count to show).
    fn queueing(&self) {}
    /// `total` guardians are about to be composed (dry run).
    fn start(&self, total: u64);
    /// `n` more were composed.
    fn advance(&self, n: u64);
    /// The run is over.
    fn finish(&self);
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl RunProgress for NoProgress {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// What a run is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct RunRequest {
    /// The week (default: the current ISO week in the tenant's zone).
    pub week: Option<IsoWeek>,
    /// Compose and count only.
    pub dry_run: bool,
    /// Rendered digests to include in the report.
    pub sample_size: usize,
    /// Guardians per page.
    pub page_size: u64,
}

/// The report of a dry run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// Tenant slug.
    pub tenant: String,
    /// The week, `YYYY-Www`.
    pub week: String,
    /// The tenant's switch: when false a real run sends nothing.
    pub digest_enabled: bool,
    /// The tenant's zone.
    pub time_zone: String,
    /// When the digest of this week is due (UTC).
    pub send_at: chrono::DateTime<chrono::Utc>,
    /// The previous window.
    pub previous: Window,
    /// The upcoming window.
    pub upcoming: Window,
    /// Digests (one per guardian): composed (dry run), or recorded for the week (real run).
    pub digests: u64,
    /// Child sections over the digests composed (dry run) or queued by this run.
    pub children: u64,
    /// Assignment lines over the digests composed (dry run) or queued by this run.
    pub assignments: u64,
    /// True: nothing was queued or sent.
    pub dry_run: bool,
    /// Digests queued by this run (real runs).
    pub queued: u64,
    /// Digests of this week recorded by an earlier or a concurrent run: skipped.
    pub already_queued: u64,
    /// The first rendered digests.
    pub sample: Vec<render::Rendered>,
}

impl RunReport {
    /// The report as text: a summary, then the sample emails.
    pub fn to_human(&self) -> String {
        let mode = if self.dry_run {
            "dry run, nothing queued".to_string()
        } else {
            format!(
                "{} queued, {} already queued for this week",
                self.queued, self.already_queued
            )
        };
        let mut out = format!(
            "digest {} for {} ({mode}){}\n  due {} ({}), previous {} .. {}, upcoming .. {}\n  {} digest(s), {} child section(s), {} assignment line(s)\n",
            self.week,
            self.tenant,
            if self.digest_enabled {
                ""
            } else {
                "\n  note: digestEnabled is false, so a real run would send nothing"
            },
            self.send_at.to_rfc3339(),
            self.time_zone,
            self.previous.start.to_rfc3339(),
            self.previous.end.to_rfc3339(),
            self.upcoming.end.to_rfc3339(),
            self.digests,
            self.children,
            self.assignments
        );
        for (i, email) in self.sample.iter().enumerate() {
            out.push_str(&format!(
                "\n--- sample {} of {}: to {}\nSubject: {}\n\n{}",
                i + 1,
                self.sample.len(),
                email.to,
                email.subject,
                email.body
            ));
        }
        out
    }
}

/// The tenant's schedule and the windows of `week` (default: this week in its zone).
pub fn windows(
    tenant: &Tenant,
    week: Option<IsoWeek>,
) -> Result<(Schedule, Windows), CalendarError> {
    // The settings are typed and checked when read: nothing to parse again here.
    let s = &tenant.settings;
    let schedule = Schedule {
        day: s.digest_day,
        hour: u32::from(s.digest_hour),
        zone: s.digest_time_zone.zone(),
    };
    let week = week.unwrap_or_else(|| IsoWeek::current(schedule.zone, chrono::Utc::now()));
    Ok((schedule, schedule.windows(week)))
}

/// One guardian's digest of `week` (default: this week) as it would be sent now — subject and
/// plain-text body — without queueing anything; `None` when they would get none (no
/// assignment to report, no email address, not an active guardian of an active student).
pub async fn preview(
    conn: &DatabaseConnection,
    tenant: &Tenant,
    contact: i64,
    week: Option<IsoWeek>,
    links: &crate::links::Links,
) -> Result<Option<render::Rendered>, DigestError> {
    let (schedule, windows) = windows(tenant, week)?;
    let digests = Composer::new(conn, tenant.id, windows, 1)
        .for_contacts(&[contact])
        .await?;
    let Some(digest) = digests.first() else {
        return Ok(None);
    };
    let secret = unsubscribe::secret(conn, tenant.id).await?;
    let link = unsubscribe::link(links, &secret, tenant.id, digest.contact_id);
    Ok(Some(render::render(
        digest,
        (&tenant.name, &windows),
        (schedule.zone, tenant.settings.default_language),
        link,
    )?))
}

/// The tenant's latest digest runs, newest first (at most `limit`).
pub async fn recent_runs<C: sea_orm::ConnectionTrait>(
    conn: &C,
    tenant: crate::domain::TenantId,
    limit: u64,
) -> Result<Vec<crate::entities::digest_runs::Model>, DbErr> {
    use crate::entities::digest_runs;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    digest_runs::Entity::find()
        .filter(digest_runs::Column::TenantId.eq(tenant.0))
        .order_by_desc(digest_runs::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// Runs the digest of one week for `tenant`: a dry run composes and counts; a real run also
/// queues each guardian's digest once per week (module docs). `links` gives the sample
/// emails their unsubscribe links.
pub async fn run(
    conn: &DatabaseConnection,
    tenant: &Tenant,
    request: RunRequest,
    progress: &dyn RunProgress,
    links: &crate::links::Links,
) -> Result<RunReport, DigestError> {
    let (schedule, windows) = windows(tenant, request.week)?;
    if !request.dry_run && !tenant.settings.digest_enabled {
        return Err(DigestError::Disabled);
    }
    let mut report = RunReport {
        tenant: tenant.slug.clone(),
        week: windows.week.to_string(),
        digest_enabled: tenant.settings.digest_enabled,
        time_zone: schedule.zone.name().to_string(),
        send_at: windows.send_at,
        previous: windows.previous,
        upcoming: windows.upcoming,
        digests: 0,
        children: 0,
        assignments: 0,
        dry_run: request.dry_run,
        queued: 0,
        already_queued: 0,
        sample: Vec::new(),
    };
    if !request.dry_run {
        progress.queueing();
        // One statement in one transaction: all queued, or nothing.
        let txn = crate::db::begin_write(conn).await?;
        deliver::lock_tenant(&txn, tenant.id).await?;
        let now = chrono::Utc::now();
        let queued = Composer::new(&txn, tenant.id, windows, request.page_size)
            .queue_all(&report.week, now)
            .await?;
        deliver::record_run(&txn, tenant.id, &report.week, queued, now).await?;
        // What this run queued, from its own id range (not a per-guardian loop).
        let (children, assignments) = deliver::run_totals(&txn, tenant.id, queued).await?;
        report.children = children;
        report.assignments = assignments;
        // Counted after the insert, so a run that waited for another one sees its rows too.
        let recorded = deliver::recorded(&txn, tenant.id, &report.week).await?;
        txn.commit().await?;
        let queued = queued.count;
        report.queued = queued;
        report.already_queued = recorded.saturating_sub(queued);
        report.digests = recorded;
        progress.finish();
        return Ok(report);
    }
    let mut composer = Composer::new(conn, tenant.id, windows, request.page_size);
    progress.start(composer.count().await?);
    let secret = if request.sample_size > 0 {
        unsubscribe::secret(conn, tenant.id).await?
    } else {
        String::new()
    };
    while let Some(page) = composer.next_page().await? {
        for digest in &page {
            report.digests += 1;
            report.children += digest.children.len() as u64;
            report.assignments += digest.assignment_count() as u64;
            if report.sample.len() < request.sample_size {
                report.sample.push(render::render(
                    digest,
                    (&tenant.name, &windows),
                    (schedule.zone, tenant.settings.default_language),
                    unsubscribe::link(links, &secret, tenant.id, digest.contact_id),
                )?);
            }
        }
        progress.advance(page.len() as u64);
    }
    progress.finish();
    Ok(report)
}
