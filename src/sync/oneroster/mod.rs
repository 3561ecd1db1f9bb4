//! Contact and roster sync from a OneRoster 1.1 REST provider (SPEC §3.1, docs/oneroster.md).
//!
//! A run pulls `orgs`, `users`, `classes` and `enrollments` through [`client`] (OAuth2
//! client credentials, paging, retries) and maps them with [`mapping`] into the staging
//! tables the SDS imports fill *as the pages come*: a full pull streams, the provider and
//! the database working side by side, with at most a couple of pages in flight and only
//! keys (not records) kept across pages, so memory does not grow with the district. Then
//! the same reconcile, deletion guard and run record as a CSV import, in one transaction;
//! on SQLite the write lock is taken only once everything is staged (API writes go on
//! during the pull). The run's `format` is `oneroster`.
//!
//! - **Full** runs are snapshots: what the provider no longer returns (or marks
//!   `tobedeleted`) becomes inactive.
//! - **Delta** runs ask only for records changed since the watermark of the last applied run
//!   (`filter=dateLastModified>'…'`) and deactivate only what the delta marks gone
//!   ([`delta`]).
//! - A provider that cannot be reached, fails, or returns malformed JSON gives a `failed`
//!   report and leaves the data unchanged.

pub mod client;
pub mod connection;
pub(crate) mod delta;
pub(crate) mod mapping;
pub(crate) mod model;

use super::csv_file::IssueSink;
use super::files::FileSet;
use super::report::{EntityCounts, ImportReport, Issue, RunStatus};
use super::{
    Format, ImportRequest, NoProgress, Outcome, Progress, Run, SyncError, checks, fast, reconcile,
    staging,
};
use crate::config::Config;
use crate::db::ImportConn;
use crate::tenants::{self, Tenant, TenantError};
use client::{Client, ClientSettings, Pager, ProviderError};
use connection::ConnectionError;
use mapping::{Message, Snapshot};
use model::{Class, Collection, Enrollment, Item, Org, User};
use sea_orm::{DatabaseConnection, DbErr};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The `format` recorded for OneRoster runs.
pub const FORMAT: &str = "oneroster";

/// What to sync.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// Tenant slug.
    pub tenant: String,
    /// Only records changed since the last applied run.
    pub delta: bool,
    /// Apply even past the deletion guard.
    pub force: bool,
    /// Who asked (for the audit log).
    pub actor: String,
}

/// Why a OneRoster sync could not run at all (a provider failure is a `failed` report,
/// a refused snapshot a `refused` one).
#[derive(Debug, thiserror::Error)]
pub enum OneRosterError {
    /// Unknown tenant.
    #[error(transparent)]
    Tenant(#[from] TenantError),
    /// The tenant has no connection.
    #[error(
        "tenant '{0}' has no OneRoster connection; run `parent-connection oneroster connect --tenant {0} ...` first"
    )]
    NotConnected(String),
    /// A delta needs the watermark of an applied run.
    #[error(
        "tenant '{0}' has no applied OneRoster run yet, so there is nothing to take a delta from: run a full sync (without --delta) first"
    )]
    NoWatermark(String),
    /// The stored connection cannot be used.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// The database failed; nothing was changed.
    #[error(transparent)]
    Sync(#[from] SyncError),
}

impl From<DbErr> for OneRosterError {
    fn from(e: DbErr) -> Self {
        Self::Sync(SyncError::Db(e))
    }
}

/// Tries the tenant's stored connection without changing anything: a token from the token
/// URL, then the provider's schools (`/orgs`, every page). `Ok(Ok(n))`: it works and lists
/// `n` orgs; `Ok(Err(why))`: what the provider or the network said.
pub async fn test_connection(
    db: &DatabaseConnection,
    config: &Config,
    tenant: &Tenant,
) -> Result<Result<usize, String>, OneRosterError> {
    let connection = connection::load(db, config, tenant.id)
        .await?
        .ok_or_else(|| OneRosterError::NotConnected(tenant.slug.clone()))?;
    let settings = ClientSettings::new(&config.oneroster, connection.page_size)
        .with_outbound(&config.outbound);
    let mut client = match Client::new(&connection, settings) {
        Ok(client) => client,
        Err(e) => return Ok(Err(e.to_string())),
    };
    Ok(client
        .collection::<Org>(None)
        .await
        .map(|orgs| orgs.items.len())
        .map_err(|e| e.to_string()))
}

/// Runs one OneRoster sync for a tenant and returns its report; every run is recorded in
/// `sync_runs` and the audit log.
pub async fn sync(
    db: &DatabaseConnection,
    config: &Config,
    request: &SyncRequest,
) -> Result<ImportReport, OneRosterError> {
    sync_with_progress(db, config, request, Arc::new(NoProgress)).await
}

/// [`sync`], telling `progress` the records mapped as pages arrive (`advance`, in
/// records) and the phases (`locking`, `applying`).
pub async fn sync_with_progress(
    db: &DatabaseConnection,
    config: &Config,
    request: &SyncRequest,
    progress: Arc<dyn Progress>,
) -> Result<ImportReport, OneRosterError> {
    let started_at = chrono::Utc::now();
    let tenant = tenants::find(db, &request.tenant).await?;
    let connection = connection::load(db, config, tenant.id)
        .await?
        .ok_or_else(|| OneRosterError::NotConnected(tenant.slug.clone()))?;
    let since = match (request.delta, &connection.watermark) {
        (false, _) => None,
        (true, Some(watermark)) => Some(watermark.clone()),
        (true, None) => return Err(OneRosterError::NoWatermark(tenant.slug.clone())),
    };
    let import_request = ImportRequest {
        tenant: tenant.slug.clone(),
        // Only for the shared helpers' signatures: the report's format is set to FORMAT.
        format: Format::SdsV21,
        dir: PathBuf::new(),
        source: Some(match &since {
            None => format!("{} (full)", connection.base_url),
            Some(since) => format!("{} (delta since {since})", connection.base_url),
        }),
        dry_run: false,
        force: request.force,
        actor: request.actor.clone(),
        privacy: crate::privacy::PrivacyKey::from_config(config)
            .map_err(|e| SyncError::Internal(e.to_string()))?,
    };
    let settings = ClientSettings::new(&config.oneroster, connection.page_size)
        .with_outbound(&config.outbound);
    let client = match Client::new(&connection, settings) {
        Ok(client) => client,
        Err(e) => {
            return Ok(record_failure(db, config, &import_request, &tenant, started_at, &e).await?);
        }
    };
    let run = Run {
        db,
        config: &config.import,
        request: &import_request,
        tenant: &tenant,
        files: Arc::new(sources()),
        progress,
        started_at,
    };
    let sink = IssueSink::new(config.import.error_cap, config.import.warning_cap);
    let pull = Pull {
        client,
        since,
        max_lookups: config.oneroster.max_delta_lookups,
    };
    let outcome = match apply_pull(&run, sink, pull).await? {
        Ok(outcome) => outcome,
        Err(e) => {
            return Ok(record_failure(db, config, &import_request, &tenant, started_at, &e).await?);
        }
    };
    let mut report = report_of(&run, &outcome);
    report.run_id = outcome.run_id;
    if report.status != RunStatus::Applied {
        // The snapshot's transaction was rolled back; the run itself is still recorded.
        let mut conn = ImportConn::begin(db).await?;
        report.run_id =
            Some(super::record_run(&mut conn, &tenant, &import_request, &report).await?);
        conn.commit().await?;
    }
    Ok(report)
}

/// Pages a pull may have read ahead of the mapping: what bounds its memory (with pages of
/// up to `oneroster.max_page_size` records).
const PAGES_IN_FLIGHT: usize = 2;

/// What to pull from the provider.
struct Pull {
    client: Client,
    /// A delta's watermark.
    since: Option<String>,
    max_lookups: u64,
}

impl Pull {
    /// Sends every collection to `pages`, page by page as the provider serves them (a
    /// delta, whose size is that of the changes, is pulled whole first: its `agents`
    /// lookups need all its users). Stops early, without error, if the mapping stopped
    /// listening.
    async fn send(&mut self, pages: mpsc::Sender<Message>) -> Result<(), ProviderError> {
        if let Some(since) = &self.since {
            let snapshot = pull(&mut self.client, Some(since), self.max_lookups).await?;
            for message in snapshot.into_messages() {
                if pages.send(message).await.is_err() {
                    break;
                }
            }
            return Ok(());
        }
        let client = &mut self.client;
        let _ = stream::<Org>(client, &pages, Message::Orgs, 0).await?
            && stream::<User>(client, &pages, Message::Users, 1).await?
            && stream::<Class>(client, &pages, Message::Classes, 2).await?
            && stream::<Enrollment>(client, &pages, Message::Enrollments, 3).await?;
        Ok(())
    }
}

/// Sends the pages of one collection, then its end; false when no one listens any more.
async fn stream<T: Collection>(
    client: &mut Client,
    pages: &mpsc::Sender<Message>,
    wrap: fn(mapping::Page<T>) -> Message,
    src: usize,
) -> Result<bool, ProviderError> {
    let mut pager = Pager::<T>::new(None);
    while let Some(page) = pager.next(client).await? {
        if pages.send(wrap(page)).await.is_err() {
            return Ok(false);
        }
    }
    let done = Message::Done {
        src,
        duplicates: pager.duplicates(),
    };
    Ok(pages.send(done).await.is_ok())
}

/// Pulls every collection (filtered by `dateLastModified` after `since` for a delta) and,
/// for a delta, the users its `agents` name that it does not hold.
async fn pull(
    client: &mut Client,
    since: Option<&str>,
    max_lookups: u64,
) -> Result<Snapshot, ProviderError> {
    let filter = since.map(|w| format!("dateLastModified>'{w}'"));
    let filter = filter.as_deref();
    let mut snapshot = Snapshot {
        orgs: client.collection::<Org>(filter).await?,
        users: client.collection::<User>(filter).await?,
        classes: client.collection::<Class>(filter).await?,
        enrollments: client.collection::<Enrollment>(filter).await?,
        ..Snapshot::default()
    };
    if since.is_some() {
        let missing = mapping::missing_agents(&snapshot.users);
        if missing.len() as u64 > max_lookups {
            // Skipping some would drop their links and, with them, the changes of the
            // contacts they name while the watermark moves on: a full run is the answer.
            return Err(ProviderError::TooManyLookups {
                needed: missing.len() as u64,
                limit: max_lookups,
            });
        }
        for id in missing {
            if let Some(Item::Ok(user)) = client.user(&id).await? {
                snapshot.lookups.push(user);
            }
        }
    }
    Ok(snapshot)
}

/// The collections as the "files" of the run, so issues name them (`/users`, record N).
fn sources() -> FileSet {
    FileSet {
        files: mapping::SOURCES
            .iter()
            .map(|name| {
                (
                    *name,
                    super::csv_file::SourceFile {
                        name: name.to_string(),
                        path: PathBuf::new(),
                    },
                )
            })
            .collect(),
        total_bytes: 0,
    }
}

/// Pulls into staging as the pages come (the provider and the database work side by side,
/// memory bounded by [`PAGES_IN_FLIGHT`] pages and the mapping's keys), then checks and
/// reconciles in one transaction. A full pull is diffed: every record is judged against the
/// tenant's live rows as it comes ([`fast::Differ::for_provider`]) and only new and changed
/// ones are staged. On SQLite the write lock is taken only to apply
/// ([`super::Lock::Late`]): API writes go on during the pull; when they changed the live
/// rows a full pull judged against, it is pulled again with the lock held from the start.
/// `Ok(Err(_))`: the provider failed; the transaction was rolled back.
async fn apply_pull(
    run: &Run<'_>,
    sink: IssueSink,
    mut pull: Pull,
) -> Result<Result<Outcome, ProviderError>, SyncError> {
    let (mut lock, mut store_keys) = (super::Lock::Late, false);
    for _ in 0..3 {
        match pull_once(run, sink.clone(), &mut pull, lock, store_keys).await? {
            Pulled::Done(result) => return Ok(result.map(|outcome| *outcome)),
            Pulled::NeedsKeys => {
                // Rows stored before keys existed get them first, in the pull's transaction
                // (when even that cannot, the pull ends with `SyncError::UnkeyedRows`).
                (lock, store_keys) = (super::Lock::Early, true);
            }
            Pulled::LiveRowsChanged => {
                tracing::info!(
                    "the live rows changed during the pull; pulling again under the lock"
                );
                lock = super::Lock::Early;
            }
        }
    }
    Err(SyncError::Internal(
        "the live rows kept changing during the pull".into(),
    ))
}

/// How one pull ended.
enum Pulled {
    Done(Result<Box<Outcome>, ProviderError>),
    /// Active live rows have no `sync_key`.
    NeedsKeys,
    /// The live rows a full pull judged against changed before the lock was taken.
    LiveRowsChanged,
}

/// One pull into staging and, when clean, its apply (see [`apply_pull`]).
async fn pull_once(
    run: &Run<'_>,
    sink: IssueSink,
    pull: &mut Pull,
    lock: super::Lock,
    store_keys: bool,
) -> Result<Pulled, SyncError> {
    let delta = pull.since.is_some();
    let diffed = !delta;
    let mut conn = super::open(run, lock).await?;
    if store_keys {
        fast::store_missing_keys(&mut conn, run.tenant.id).await?;
    }
    // Read before the live rows: a commit by anyone else from here on changes it.
    let version = conn.data_version().await?;
    run.progress.start(0);
    let (sender, receiver) = mpsc::channel(PAGES_IN_FLIGHT);
    let (existing_to, existing) = std::sync::mpsc::sync_channel(1);
    let tenant = run.tenant.id;
    // A full pull judges against the live rows, loaded while the first pages come.
    let load = async move |conn: &mut ImportConn| -> Result<u64, DbErr> {
        if !diffed {
            return Ok(0);
        }
        let existing = fast::load(conn, tenant).await?;
        let fingerprint = existing.fingerprint;
        let _ = existing_to.send(existing);
        Ok(fingerprint)
    };
    let names = mapping::SOURCES.iter().map(|s| s.to_string()).collect();
    let staging = super::stage_files_with(&mut conn, run, sink, load, move |ctx| {
        if diffed {
            ctx.stager.differ = Some(fast::Differ::for_provider(existing, names));
        }
        let mut staged = mapping::stage_stream(ctx, delta, receiver);
        // Contact warnings follow everything the mapping reported.
        let contact_warnings = ctx.sink.warnings.len();
        let unlinked = std::mem::take(&mut staged.unlinked_contacts);
        let diff = ctx
            .stager
            .differ
            .take()
            .map(|d| d.finish_provider(&mut ctx.sink, unlinked));
        (staged, diff, contact_warnings)
    });
    let (pulled, staged) = tokio::join!(pull.send(sender), staging);
    if let Err(e) = pulled {
        conn.rollback().await?;
        return Ok(Pulled::Done(Err(e)));
    }
    let (sink, rejected, (staged, diff, contact_warnings), fingerprint) = staged?;
    // The mapping's keys are freed; the apply's SQL (SQLite's page cache and sorters)
    // comes next.
    return_freed_memory();
    if diff.as_ref().is_some_and(|d| d.needs_keys) {
        if store_keys {
            let unkeyed = fast::unkeyed_rows(&mut conn, run.tenant.id).await?;
            conn.rollback().await?;
            return Err(super::unkeyed_error(unkeyed));
        }
        conn.rollback().await?;
        return Ok(Pulled::NeedsKeys);
    }
    let mut outcome = Outcome::with_rejected(sink, rejected);
    outcome.diffed = diff.is_some();
    if outcome.sink.errors.is_empty() {
        staging::index_tables(&mut conn).await?;
        match &diff {
            Some(diff) => drop_contacts(&mut conn, &diff.unlinked_contacts).await?,
            None => drop_unlinked_contacts(&mut conn).await?,
        }
        checks::contact_warnings(&mut conn, &run.files, &mut outcome.sink).await?;
        if diff.is_some() {
            // Those of unchanged contacts were found while mapping: in the order of the
            // staged ones'.
            let warnings = &mut outcome.sink.warnings;
            let from = contact_warnings.min(warnings.len());
            warnings[from..]
                .sort_by_key(|w| (checks::warning_rank(w.code), w.file.clone(), w.record));
        }
        if diff.is_none() {
            // Nothing was decided against rows read earlier.
            super::lock_to_apply(&mut conn, run).await?;
        } else if !super::lock_and_verify(&mut conn, run, version, fingerprint).await? {
            conn.rollback().await?;
            return Ok(Pulled::LiveRowsChanged);
        }
        let copied = if delta {
            Some(delta::prepare(&mut conn, run.tenant.id, &staged).await?)
        } else {
            None
        };
        if let Some(diff) = &diff {
            for (table, keys) in &diff.gone {
                staging::insert_gone(&mut conn, table, keys).await?;
            }
        }
        // A delta stages its changes only, none of them found unchanged in memory.
        let changes = diff.as_ref().map(|d| d.unchanged).unwrap_or_default();
        super::apply(
            &mut conn,
            &run.request.privacy,
            run.tenant,
            run.started_at,
            &mut outcome.entities,
            &changes,
        )
        .await?;
        if let Some(copied) = copied {
            copied.discount(&mut outcome.entities);
        }
        deletion_guard(&mut conn, run, &mut outcome).await?;
    }
    finish(conn, run, outcome, staged.watermark)
        .await
        .map(|outcome| Pulled::Done(Ok(Box::new(outcome))))
}

/// Gives the memory the pull's keys freed back to the system. glibc keeps freed blocks in
/// its per-thread arenas (those below its mmap threshold, which rises as large blocks are
/// freed): at 1,000,000 students about 40 MB the mapping thread freed stayed resident
/// under the apply's peak (docs/performance.md).
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim only returns free memory of glibc's arenas to the system.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Drops from staging the contacts a diffed pull staged that no link names: they are not
/// part of the run (a contact syncs through its links).
async fn drop_contacts(conn: &mut ImportConn, keys: &[i64]) -> Result<(), DbErr> {
    if keys.is_empty() {
        return Ok(());
    }
    staging::insert_gone(conn, UNLINKED, keys).await?;
    conn.exec(
        &format!(
            "DELETE FROM s_contacts WHERE sync_key IN (SELECT k FROM {} WHERE tbl = '{UNLINKED}')",
            staging::GONE
        ),
        vec![],
    )
    .await
    .map(|_| ())
}

/// The `tbl` of [`staging::GONE`] rows naming staged contacts no link names.
const UNLINKED: &str = "unlinked_contacts";

/// Contact users are staged as they come; those no staged link names are not part of the
/// run (a contact syncs through its links).
async fn drop_unlinked_contacts(conn: &mut ImportConn) -> Result<(), DbErr> {
    conn.exec(
        "DELETE FROM s_contacts WHERE NOT EXISTS \
         (SELECT 1 FROM s_links l WHERE l.contact_key = s_contacts.source_key)",
        vec![],
    )
    .await
    .map(|_| ())
}

/// The deletion guard of SPEC §3.3 (a share of the tenant's active links).
async fn deletion_guard(
    conn: &mut ImportConn,
    run: &Run<'_>,
    outcome: &mut Outcome,
) -> Result<(), DbErr> {
    if run.request.force {
        return Ok(());
    }
    let links = &outcome.entities.links;
    let active_before = reconcile::active_links(conn, run.tenant.id).await? + links.deactivated
        - links.created
        - links.reactivated;
    let percent = run.tenant.settings.deletion_guard_percent.max(0) as u64;
    if active_before > 0 && links.deactivated * 100 > active_before * percent {
        outcome.sink.error(Issue::file(
            "(provider)",
            "deletion_guard",
            format!(
                "this run would deactivate {} of {} active student-contact links ({:.1}%), more than the tenant's limit of {}%; check the provider's data, or re-run with --force",
                links.deactivated,
                active_before,
                links.deactivated as f64 * 100.0 / active_before as f64,
                percent
            ),
        ));
    }
    Ok(())
}

/// Rolls back a refused run; otherwise records it, moves the watermark and commits.
async fn finish(
    mut conn: ImportConn,
    run: &Run<'_>,
    mut outcome: Outcome,
    watermark: Option<String>,
) -> Result<Outcome, SyncError> {
    if !outcome.sink.errors.is_empty() {
        conn.rollback().await?;
        return Ok(outcome);
    }
    staging::drop_tables(&mut conn).await?;
    delta::drop_tables(&mut conn).await?;
    reconcile::drop_resolved(&mut conn).await?;
    let report = report_of(run, &outcome);
    outcome.run_id = Some(super::record_run(&mut conn, run.tenant, run.request, &report).await?);
    connection::mark_applied(
        &mut conn,
        run.tenant.id,
        watermark.as_deref(),
        chrono::Utc::now(),
    )
    .await?;
    conn.commit().await?;
    Ok(outcome)
}

fn report_of(run: &Run<'_>, outcome: &Outcome) -> ImportReport {
    let mut report = super::build_report(
        run.request,
        run.tenant,
        &outcome.entities,
        &outcome.sink,
        run.started_at,
    );
    report.format = FORMAT.into();
    report.diffed = outcome.diffed;
    report
}

/// Records a run the provider made fail (nothing was staged) and returns its report.
async fn record_failure(
    db: &DatabaseConnection,
    config: &Config,
    request: &ImportRequest,
    tenant: &Tenant,
    started_at: chrono::DateTime<chrono::Utc>,
    error: &ProviderError,
) -> Result<ImportReport, DbErr> {
    tracing::info!(tenant = %tenant.slug, error = %error, "OneRoster sync failed; nothing was changed");
    let mut sink = IssueSink::new(config.import.error_cap, config.import.warning_cap);
    sink.error(Issue::file("(provider)", error.code(), error.to_string()));
    let mut report =
        super::build_report(request, tenant, &EntityCounts::default(), &sink, started_at);
    report.format = FORMAT.into();
    report.status = RunStatus::Failed;
    let mut conn = ImportConn::begin(db).await?;
    report.run_id = Some(super::record_run(&mut conn, tenant, request, &report).await?);
    conn.commit().await?;
    Ok(report)
}

/// How often the `serve` scheduler looks for a due period, at most (less when the period
/// is shorter).
const SCHEDULE_CHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// Starts the `serve` scheduler when `oneroster.schedule_hours` is set: time is cut into
/// periods of that many hours, aligned on the Unix epoch (UTC) so that every instance agrees
/// on them, and each connected tenant is synced once per period across all instances
/// ([`run_due`]; a delta when `schedule_delta` is set and the tenant has a watermark, else a
/// full run). Returns `None` when the schedule is off.
pub fn spawn_schedule(
    db: DatabaseConnection,
    config: Arc<Config>,
) -> Option<tokio::task::JoinHandle<()>> {
    let hours = config.oneroster.schedule_hours;
    if hours == 0 {
        return None;
    }
    tracing::info!(
        every_hours = hours,
        delta = config.oneroster.schedule_delta,
        "OneRoster schedule on"
    );
    Some(tokio::spawn(async move {
        let period = std::time::Duration::from_secs(hours.saturating_mul(3600));
        let mut ticks = tokio::time::interval(period.min(SCHEDULE_CHECK));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            run_due(&db, &config, chrono::Utc::now()).await;
        }
    }))
}

/// The start of the schedule period of `hours` hours that `now` falls in (periods are
/// aligned on the Unix epoch).
pub fn period_start(
    now: chrono::DateTime<chrono::Utc>,
    hours: u64,
) -> chrono::DateTime<chrono::Utc> {
    let length = i64::try_from(hours.max(1).saturating_mul(3600)).unwrap_or(i64::MAX);
    let start = now.timestamp().div_euclid(length) * length;
    chrono::DateTime::from_timestamp(start, 0).unwrap_or(now)
}

/// Syncs every connected tenant whose run of the period of `now` no instance has made (or
/// is making); returns the slugs this call synced. A run that could not reach the database
/// is given back and tried again at the next check; any other outcome (applied, refused,
/// failed at the provider) is that period's run.
pub async fn run_due(
    db: &DatabaseConnection,
    config: &Config,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<String> {
    use crate::db::jobs::{self, Job};
    let tenants = match connection::connected_tenants(db).await {
        Ok(tenants) => tenants,
        Err(e) => {
            tracing::error!(error = %e, "OneRoster schedule: cannot list the connections");
            return Vec::new();
        }
    };
    let period = period_start(now, config.oneroster.schedule_hours)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut synced = Vec::new();
    for slug in tenants {
        let key = format!("{slug}:{period}");
        let run = async {
            match sync_scheduled(db, config, &slug).await {
                Err(OneRosterError::Sync(e)) => Err(DbErr::Custom(e.to_string())),
                _ => Ok(()),
            }
        };
        match jobs::run_once(db, (Job::OneRoster, &key), jobs::LEASE, run).await {
            Ok(Some(())) => synced.push(slug),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(tenant = %slug, error = %e, "OneRoster scheduled sync given back; retrying at the next check")
            }
        }
    }
    synced
}

/// One round of the schedule on this instance alone: every connected tenant, one after the
/// other, whatever other instances did (`serve` uses [`run_due`]).
pub async fn run_scheduled(db: &DatabaseConnection, config: &Config) {
    let tenants = match connection::connected_tenants(db).await {
        Ok(tenants) => tenants,
        Err(e) => {
            tracing::error!(error = %e, "OneRoster schedule: cannot list the connections");
            return;
        }
    };
    for slug in tenants {
        let _ = sync_scheduled(db, config, &slug).await;
    }
}

/// The scheduled sync of one tenant (a delta falls back to a full run without a
/// watermark, or when it needs more lookups than `oneroster.max_delta_lookups`), logged;
/// the error when it could not run.
async fn sync_scheduled(
    db: &DatabaseConnection,
    config: &Config,
    slug: &str,
) -> Result<(), OneRosterError> {
    let mut request = SyncRequest {
        tenant: slug.to_string(),
        delta: config.oneroster.schedule_delta,
        force: false,
        actor: "scheduler:oneroster".into(),
    };
    let mut result = sync(db, config, &request).await;
    let too_large = |report: &ImportReport| {
        report.status == RunStatus::Failed
            && report
                .errors
                .iter()
                .any(|e| e.code == client::DELTA_TOO_LARGE)
    };
    let full_instead = match &result {
        Err(OneRosterError::NoWatermark(_)) => true,
        Ok(report) if request.delta && too_large(report) => {
            tracing::info!(tenant = %slug, "OneRoster scheduled delta too large; running a full sync instead");
            true
        }
        _ => false,
    };
    if full_instead {
        request.delta = false;
        result = sync(db, config, &request).await;
    }
    match result {
        Ok(report) => {
            tracing::info!(
                tenant = %slug,
                status = report.status.as_str(),
                run = report.run_id,
                errors = report.errors.len(),
                "OneRoster scheduled sync"
            );
            Ok(())
        }
        Err(e) => {
            tracing::error!(tenant = %slug, error = %e, "OneRoster scheduled sync could not run");
            Err(e)
        }
    }
}
