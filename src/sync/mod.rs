//! Contact and roster sync from SIS files (SDS v1 and SDS v2.1 CSV).
//!
//! A run is a full snapshot applied all-or-nothing in one transaction, through one pipeline
//! (first imports, re-syncs and OneRoster pulls alike):
//! 1. the files are found and checked as a set ([`files`], [`sds_v1`], [`sds_v21`]);
//! 2. every file is parsed with the guards of [`csv_file`], each row judged against the
//!    tenant's live rows in memory by hash and the cross-file rules checked on hashed keys
//!    ([`fast`]); only new and changed rows are streamed into temporary staging tables
//!    ([`staging`]) while a second task writes them;
//! 3. at any problem the files are read once more and every rule is checked exactly, in
//!    memory ([`checks`]), for the report; nothing is written;
//! 4. otherwise the changes are reconciled with set-based SQL ([`reconcile`]);
//! 5. the guards (deletion share, missing optional files) decide; a refused run, a dry run
//!    or any error rolls the transaction back, so the database is exactly as before.
//!
//! On SQLite steps 1–3 run before the write lock is taken, which is held only from step 4 to
//! the commit; the run then checks that the live rows it diffed against did not change
//! meanwhile (`Lock::Late`, docs/database.md).

pub(crate) mod checks;
pub(crate) mod csv_file;
pub(crate) mod erasures;
pub(crate) mod fast;
pub(crate) mod files;
pub(crate) mod hashing;
pub mod oneroster;
pub(crate) mod reconcile;
pub mod report;
pub mod runs;
pub(crate) mod sds_v1;
pub(crate) mod sds_v21;
pub(crate) mod staging;

use crate::audit::{self, AuditEntry};
use crate::config::ImportConfig;
use crate::db::ImportConn;
use crate::entities::sync_run;
use crate::tenants::{self, Tenant, TenantError};
use checks::Collected;
use csv_file::{IssueSink, Limits};
use files::{FileSet, NameMatch, ParseCtx};
use reconcile::Presence;
use report::{Counts, EntityCounts, ImportReport, Issue, RunStatus};
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait, QueryTrait, Value};
use staging::{StageTable, Stager};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// The file formats an import reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// SDS v1 (classic) CSV with `User.csv` and `Guardianrelationship.csv`.
    #[value(name = "sds-v1")]
    SdsV1,
    /// SDS v2.1 CSV with `relationships.csv`.
    #[value(name = "sds-v2.1")]
    SdsV21,
}

impl Format {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SdsV1 => "sds-v1",
            Self::SdsV21 => "sds-v2.1",
        }
    }

    /// Every file name of the format, in reading order.
    pub fn files(self) -> &'static [&'static str] {
        match self {
            Self::SdsV1 => sds_v1::FILES,
            Self::SdsV21 => sds_v21::FILES,
        }
    }

    /// How the format's file names are matched.
    fn name_match(self) -> NameMatch {
        match self {
            Self::SdsV1 => sds_v1::NAME_MATCH,
            Self::SdsV21 => sds_v21::NAME_MATCH,
        }
    }

    /// Whole-set problems found before parsing.
    fn check_set(self, files: &FileSet, sink: &mut IssueSink) {
        match self {
            Self::SdsV1 => sds_v1::check_set(files, sink),
            Self::SdsV21 => sds_v21::check_set(files, sink),
        }
    }

    /// Parses every present file of the set into staging batches (which the report pass
    /// only collects, [`report_problems`]).
    fn parse(self, ctx: &mut ParseCtx<'_>) {
        match self {
            Self::SdsV1 => sds_v1::parse(ctx),
            Self::SdsV21 => fast::collect_v21(ctx),
        }
    }

    /// Parses every present file of the set against the live rows from `existing`, staging
    /// only what changed ([`fast`]).
    fn parse_diffed(
        self,
        ctx: &mut ParseCtx<'_>,
        existing: std::sync::mpsc::Receiver<fast::Existing>,
    ) -> fast::Diff {
        match self {
            Self::SdsV1 => fast::parse_staged(ctx, &sds_v1::RULES, existing, sds_v1::parse),
            Self::SdsV21 => fast::parse_v21(ctx, existing),
        }
    }

    /// The cross-file rules.
    fn rules(self) -> &'static checks::Rules {
        match self {
            Self::SdsV1 => &sds_v1::RULES,
            Self::SdsV21 => &sds_v21::RULES,
        }
    }

    /// The optional files of the missing-file guard.
    fn guarded_files(self) -> &'static [checks::GuardedFile] {
        match self {
            Self::SdsV1 => sds_v1::GUARDED_FILES,
            Self::SdsV21 => sds_v21::GUARDED_FILES,
        }
    }
}

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// Tenant slug.
    pub tenant: String,
    /// File format.
    pub format: Format,
    /// Folder holding the files.
    pub dir: PathBuf,
    /// What the report and the stored run name as the source (`None`: the folder). An
    /// upload names its files here instead of a temporary folder.
    pub source: Option<String>,
    /// Check and count everything, write nothing.
    pub dry_run: bool,
    /// Apply even past the deletion guards.
    pub force: bool,
    /// Who asked (for the audit log).
    pub actor: String,
    /// The key of the erasures' hashed SIS keys ([`erasures`]).
    pub privacy: crate::privacy::PrivacyKey,
}

/// Receives progress while an import runs (the CLI draws a bar with it).
pub trait Progress: Send + Sync {
    /// Total bytes of the files about to be read.
    fn start(&self, total_bytes: u64);
    /// More bytes were read.
    fn advance(&self, bytes: u64);
    /// A new phase began (e.g. "checking", "applying").
    fn phase(&self, name: &str);
    /// The run is over.
    fn finish(&self);
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn phase(&self, _: &str) {}
    fn finish(&self) {}
}

/// Why an import could not run at all (as opposed to a refused snapshot, which is a
/// report with status `refused`).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Unknown tenant.
    #[error(transparent)]
    Tenant(#[from] TenantError),
    /// Database failure; nothing was changed.
    #[error("database error (nothing was changed): {0}")]
    Db(#[from] DbErr),
    /// The parser task died.
    #[error("internal error (nothing was changed): {0}")]
    Internal(String),
    /// Active live rows have no `sync_key` and their natural key cannot be read (e.g. an
    /// enrollment whose person is neither student nor staff any more), so a snapshot's
    /// absence of them could not be told: the rows need repair first.
    #[error(
        "{rows} active rows of {table} have no sync_key and their natural key cannot be read (e.g. an enrollment whose person row is gone); repair or delete them, then run again (nothing was changed)"
    )]
    UnkeyedRows {
        /// The live table.
        table: &'static str,
        /// How many of its active rows.
        rows: u64,
    },
    /// The in-memory pass saw a problem that the exact rules do not find: two different
    /// keys share a 64-bit hash.
    #[error(
        "the in-memory checks saw a problem ({0}) that the exact checks do not find: two keys share a 64-bit hash; please report this (nothing was changed)"
    )]
    KeyCollision(String),
}

/// Runs one import and returns its report. Refused and dry runs are `Ok` with the matching
/// status; every run is recorded in `sync_runs` and the audit log.
pub async fn import(
    db: &DatabaseConnection,
    config: &ImportConfig,
    request: &ImportRequest,
    progress: Arc<dyn Progress>,
) -> Result<ImportReport, SyncError> {
    let started_at = chrono::Utc::now();
    let tenant = tenants::find(db, &request.tenant).await?;
    let mut sink = IssueSink::new(config.error_cap, config.warning_cap);
    let format = request.format;
    let mut outcome = Outcome::default();
    match FileSet::scan(&request.dir, format.files(), format.name_match(), &mut sink) {
        Err(issue) => sink.error(issue),
        Ok(files) => {
            format.check_set(&files, &mut sink);
            if sink.errors.is_empty() {
                outcome = run_in_transaction(
                    db,
                    config,
                    request,
                    &tenant,
                    files,
                    sink,
                    progress.clone(),
                    started_at,
                )
                .await?;
                sink = std::mem::take(&mut outcome.sink);
            }
        }
    }
    progress.finish();
    let mut report = build_report(request, &tenant, &outcome.entities, &sink, started_at);
    report.run_id = outcome.run_id;
    report.diffed = outcome.diffed;
    let status = report.status;
    if status != RunStatus::Applied {
        // The snapshot's transaction was rolled back; the run itself is still recorded.
        let mut conn = ImportConn::begin(db).await?;
        report.run_id = Some(record_run(&mut conn, &tenant, request, &report).await?);
        conn.commit().await?;
    }
    Ok(report)
}

#[derive(Default)]
struct Outcome {
    /// Applied through the diffed path.
    diffed: bool,
    entities: EntityCounts,
    sink: IssueSink,
    run_id: Option<i64>,
}

impl Outcome {
    /// The outcome of a read: its issues, and its rejected rows counted per entity.
    fn with_rejected(sink: IssueSink, rejected: Vec<(StageTable, u64)>) -> Self {
        let mut outcome = Self {
            sink,
            ..Self::default()
        };
        for (table, count) in rejected {
            entity_counts(&mut outcome.entities, table).rejected += count;
        }
        outcome
    }
}

/// Applies a file set in one transaction through the diffed pipeline; a file set with
/// problems is read again for the exact report ([`report_problems`]).
#[allow(clippy::too_many_arguments)]
async fn run_in_transaction(
    db: &DatabaseConnection,
    config: &ImportConfig,
    request: &ImportRequest,
    tenant: &Tenant,
    files: FileSet,
    sink: IssueSink,
    progress: Arc<dyn Progress>,
    started_at: chrono::DateTime<chrono::Utc>,
) -> Result<Outcome, SyncError> {
    let run = Run {
        db,
        config,
        request,
        tenant,
        files: Arc::new(files),
        progress,
        started_at,
    };
    let (mut lock, mut store_keys) = (Lock::Late, false);
    // At most: late → live rows changed → early → needs keys → early storing keys.
    for _ in 0..3 {
        match run_diffed(&run, sink.clone(), lock, store_keys).await? {
            Diffed::Applied(outcome) => return Ok(*outcome),
            Diffed::Problems(problem) => {
                let outcome = report_problems(&run, sink).await?;
                if outcome.sink.errors.is_empty() {
                    tracing::error!(%problem, "the exact checks found no problem on a second look");
                    return Err(SyncError::KeyCollision(problem));
                }
                return Ok(outcome);
            }
            Diffed::NeedsKeys => {
                // Rows stored before keys existed: the same run again, storing their keys
                // first in its own transaction (a dry run or a refused run rolls them back).
                (lock, store_keys) = (Lock::Early, true);
            }
            Diffed::LiveRowsChanged => {
                // Someone changed the tenant's rows while the files were read: read them
                // again with the write lock held from the start, so nothing can change.
                tracing::info!(
                    "the live rows changed while the files were read; reading them again under the lock"
                );
                lock = Lock::Early;
            }
        }
    }
    Err(SyncError::Internal(
        "the live rows kept changing while the files were read".into(),
    ))
}

/// What every step of one run needs.
struct Run<'a> {
    db: &'a DatabaseConnection,
    config: &'a ImportConfig,
    request: &'a ImportRequest,
    tenant: &'a Tenant,
    files: Arc<FileSet>,
    progress: Arc<dyn Progress>,
    started_at: chrono::DateTime<chrono::Utc>,
}

/// When a run takes SQLite's write lock (PostgreSQL's transaction locks no one out, so
/// there it makes no difference).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    /// Before anything is read.
    Early,
    /// Only to apply: the files are read and staged (temporary tables only) and checked
    /// with API writes going on, and the lock is taken for the reconcile and the commit
    /// ([`lock_to_apply`]).
    Late,
}

/// How a diffed run ended.
enum Diffed {
    Applied(Box<Outcome>),
    /// The files have problems, to be reported exactly ([`report_problems`]); what the
    /// in-memory pass saw first.
    Problems(String),
    /// Active live rows have no `sync_key` ([`fast::store_missing_keys`] stores them; when
    /// even that cannot, the run ends with [`SyncError::UnkeyedRows`]).
    NeedsKeys,
    /// The tenant's live rows changed between reading them and taking the lock.
    LiveRowsChanged,
}

/// Takes SQLite's write lock before the run changes any live row (its progress says
/// `locking` while it waits, then `applying`). From here to the commit API writes answer
/// `503 database_busy`.
async fn lock_to_apply(conn: &mut ImportConn, run: &Run<'_>) -> Result<(), SyncError> {
    if !conn.is_locked() {
        run.progress.phase("locking");
        conn.lock().await?;
    }
    run.progress.phase("applying");
    Ok(())
}

/// Takes the write lock to apply ([`lock_to_apply`]) and checks that the live rows a diffed
/// pass judged against (`fingerprint`, read at data version `version`) are still what is
/// stored. False when they changed: nothing decided in memory may be applied.
async fn lock_and_verify(
    conn: &mut ImportConn,
    run: &Run<'_>,
    version: Option<i64>,
    fingerprint: u64,
) -> Result<bool, SyncError> {
    if conn.is_locked() {
        run.progress.phase("applying");
        return Ok(true);
    }
    lock_to_apply(conn, run).await?;
    // When no one else committed anything since the rows were read, they are the same;
    // otherwise they are read again (1.5 s at a million students) and compared.
    if version.is_none() || conn.data_version().await? != version {
        run.progress.phase("verifying");
        if fast::load(conn, run.tenant.id).await?.fingerprint != fingerprint {
            return Ok(false);
        }
        run.progress.phase("applying");
    }
    Ok(true)
}

/// Begins the import transaction and creates the staging tables.
async fn open(run: &Run<'_>, lock: Lock) -> Result<ImportConn, SyncError> {
    let mut conn = match lock {
        Lock::Early => ImportConn::begin(run.db).await?,
        Lock::Late => ImportConn::begin_unlocked(run.db).await?,
    };
    conn.allow_large_sorts().await?;
    // One import per tenant at a time: the second waits here.
    conn.lock_tenant(crate::db::TenantLock::Import, run.tenant.id)
        .await?;
    staging::create_tables(&mut conn).await?;
    Ok(conn)
}

/// Reads the files again, keeping only the columns the cross-file rules read, and checks
/// every rule in memory: the exact report of a file set the diffed path found problems in
/// (nothing is written; the transaction of the diffed path was rolled back).
async fn report_problems(run: &Run<'_>, sink: IssueSink) -> Result<Outcome, SyncError> {
    run.progress.phase("checking");
    run.progress.start(run.files.total_bytes);
    let format = run.request.format;
    let mut collected = Collected::for_rules(format.rules());
    let (sink, rejected) =
        collect_files(run, sink, &mut collected, move |ctx| format.parse(ctx)).await?;
    let mut outcome = Outcome::with_rejected(sink, rejected);
    if outcome.sink.errors.is_empty() {
        format.rules().check(
            &mut collected,
            &run.files,
            &mut outcome.sink,
            &mut outcome.entities,
        );
    }
    Ok(outcome)
}

/// The diffed pipeline (see [`fast`]). With [`Lock::Late`] the live rows are read
/// without the lock, and read again once it is held: when they changed meanwhile the run
/// stops ([`Diffed::LiveRowsChanged`]) before changing anything.
async fn run_diffed(
    run: &Run<'_>,
    sink: IssueSink,
    lock: Lock,
    store_keys: bool,
) -> Result<Diffed, SyncError> {
    let mut conn = open(run, lock).await?;
    if store_keys {
        let stored = fast::store_missing_keys(&mut conn, run.tenant.id).await?;
        tracing::info!(
            rows = stored,
            "stored the keys of live rows stored without one"
        );
    }
    run.progress.phase("loading");
    // Read before the live rows: a commit by anyone else from here on changes it.
    let version = conn.data_version().await?;
    run.progress.start(run.files.total_bytes);
    // The live rows are loaded while the parser reads the files that need none of them.
    let (existing_to, existing) = std::sync::mpsc::sync_channel(1);
    // `move`: the sender goes with the load, so a load that fails stops the parser.
    let load = async move |conn: &mut ImportConn| -> Result<u64, DbErr> {
        let existing = fast::load(conn, run.tenant.id).await?;
        let fingerprint = existing.fingerprint;
        // A parser that already stopped (a problem in the first files) needs none.
        let _ = existing_to.send(existing);
        Ok(fingerprint)
    };
    let format = run.request.format;
    let (sink, _, diff, fingerprint) = stage_files_with(&mut conn, run, sink, load, move |ctx| {
        format.parse_diffed(ctx, existing)
    })
    .await?;
    if let Some(problem) = diff.problem {
        if diff.needs_keys {
            if store_keys {
                let unkeyed = fast::unkeyed_rows(&mut conn, run.tenant.id).await?;
                conn.rollback().await?;
                return Err(unkeyed_error(unkeyed));
            }
            conn.rollback().await?;
            tracing::info!(%problem, "live rows need their keys stored first");
            return Ok(Diffed::NeedsKeys);
        }
        conn.rollback().await?;
        tracing::info!(%problem, "the file set has problems; reading it again to report them");
        return Ok(Diffed::Problems(problem));
    }
    let mut outcome = Outcome {
        sink,
        diffed: true,
        ..Outcome::default()
    };
    if !lock_and_verify(&mut conn, run, version, fingerprint).await? {
        conn.rollback().await?;
        return Ok(Diffed::LiveRowsChanged);
    }
    for (table, keys) in &diff.gone {
        staging::insert_gone(&mut conn, table, keys).await?;
    }
    // Only the small tables staged whole need an index (absent rows are found with NOT
    // EXISTS against them); the change sets are scanned and joined to the live tables'
    // indexes.
    staging::index_some(
        &mut conn,
        &[StageTable::Schools, StageTable::Staff, StageTable::Classes],
    )
    .await?;
    skip_erased_then_warn(&mut conn, run, &mut outcome).await?;
    // Warnings of unchanged rows were found while reading, those of staged ones in SQL: one
    // order for both.
    outcome
        .sink
        .warnings
        .sort_by_key(|w| (checks::warning_rank(w.code), w.file.clone(), w.record));
    apply(
        &mut conn,
        &run.request.privacy,
        run.tenant,
        run.started_at,
        &mut outcome.entities,
        &diff.unchanged,
    )
    .await?;
    guards(&mut conn, run.request, run.tenant, &run.files, &mut outcome).await?;
    finish(conn, run, outcome)
        .await
        .map(|outcome| Diffed::Applied(Box::new(outcome)))
}

/// The error of a run whose active live rows have no key even after
/// [`fast::store_missing_keys`]: the first such table and its row count.
fn unkeyed_error(unkeyed: Vec<(&'static str, u64)>) -> SyncError {
    match unkeyed.into_iter().find(|(_, rows)| *rows > 0) {
        Some((table, rows)) => SyncError::UnkeyedRows { table, rows },
        None => {
            SyncError::Internal("live rows without a sync_key that cannot be counted again".into())
        }
    }
}

/// Rolls back a refused or dry run; otherwise records the run and commits.
async fn finish(
    mut conn: ImportConn,
    run: &Run<'_>,
    mut outcome: Outcome,
) -> Result<Outcome, SyncError> {
    if !outcome.sink.errors.is_empty() || run.request.dry_run {
        conn.rollback().await?;
        return Ok(outcome);
    }
    staging::drop_tables(&mut conn).await?;
    reconcile::drop_resolved(&mut conn).await?;
    let mut report = build_report(
        run.request,
        run.tenant,
        &outcome.entities,
        &outcome.sink,
        run.started_at,
    );
    report.diffed = outcome.diffed;
    outcome.run_id = Some(record_run(&mut conn, run.tenant, run.request, &report).await?);
    run.progress.phase("committing");
    conn.commit().await?;
    Ok(outcome)
}

/// What the parser thread hands back: the issues, the rejected rows per table, and what
/// the format's parse returned.
type Parsed<R> = (IssueSink, Vec<(StageTable, u64)>, R);

/// Starts `parse` on a blocking thread; its staged rows come out of the receiver in
/// batches of `batch_rows`.
fn spawn_parser<R: Send + 'static>(
    run: &Run<'_>,
    sink: IssueSink,
    batch_rows: usize,
    parse: impl FnOnce(&mut ParseCtx<'_>) -> R + Send + 'static,
) -> (
    tokio::task::JoinHandle<Parsed<R>>,
    tokio::sync::mpsc::Receiver<staging::Batch>,
) {
    // Two batches in flight keep both threads busy; more only costs memory.
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    let config = run.config;
    let limits = Limits {
        max_file_bytes: config.max_file_bytes,
        max_record_bytes: config.max_record_bytes,
        max_field_bytes: config.max_field_bytes,
    };
    let region = run.tenant.region;
    let (files, progress) = (run.files.clone(), run.progress.clone());
    let parser = tokio::task::spawn_blocking(move || {
        let mut advance = move |bytes: u64| progress.advance(bytes);
        let mut ctx = ParseCtx {
            files: &files,
            limits,
            region,
            sink,
            stager: Stager::new(sender, batch_rows),
            progress: &mut advance,
            rejected: Vec::new(),
        };
        let result = parse(&mut ctx);
        ctx.stager.flush();
        (ctx.sink, ctx.rejected, result)
    });
    (parser, receiver)
}

/// Waits for the parser thread.
async fn parsed<R>(parser: tokio::task::JoinHandle<Parsed<R>>) -> Result<Parsed<R>, SyncError> {
    parser
        .await
        .map_err(|e| SyncError::Internal(format!("the file reader stopped: {e}")))
}

/// Parses the files with `parse` and keeps only the rule columns of the staged rows, in
/// `collected`: nothing is written. Returns the issues and the rejected rows per table.
async fn collect_files(
    run: &Run<'_>,
    sink: IssueSink,
    collected: &mut Collected,
    parse: impl FnOnce(&mut ParseCtx<'_>) + Send + 'static,
) -> Result<(IssueSink, Vec<(StageTable, u64)>), SyncError> {
    let (parser, mut receiver) = spawn_parser(run, sink, run.config.batch_rows, parse);
    while let Some(batch) = receiver.recv().await {
        collected.add(&batch);
    }
    let (sink, rejected, ()) = parsed(parser).await?;
    Ok((sink, rejected))
}

/// Parses the files on a blocking thread with `parse` and writes the staged rows as they
/// come; `first` runs on the connection meanwhile, before any staged row is written.
/// Returns the issues, the rejected rows per table, what `parse` and `first` returned.
async fn stage_files_with<R: Send + 'static, F>(
    conn: &mut ImportConn,
    run: &Run<'_>,
    sink: IssueSink,
    first: impl AsyncFnOnce(&mut ImportConn) -> Result<F, DbErr>,
    parse: impl FnOnce(&mut ParseCtx<'_>) -> R + Send + 'static,
) -> Result<(IssueSink, Vec<(StageTable, u64)>, R, F), SyncError> {
    let batch_rows = conn.bulk_batch_rows(run.config.batch_rows);
    let (parser, mut receiver) = spawn_parser(run, sink, batch_rows, parse);
    let (mut failure, mut first_result) = (None, None);
    match first(conn).await {
        Ok(value) => first_result = Some(value),
        Err(e) => failure = Some(e),
    }
    let (started, mut staged, mut busy) = (Instant::now(), 0u64, std::time::Duration::ZERO);
    while failure.is_none()
        && let Some(batch) = receiver.recv().await
    {
        let writing = Instant::now();
        match staging::insert_batch(conn, batch).await {
            Ok(rows) => staged += rows,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
        busy += writing.elapsed();
    }
    tracing::debug!(
        rows = staged,
        ms = started.elapsed().as_millis() as u64,
        writing_ms = busy.as_millis() as u64,
        "staged the files"
    );
    drop(receiver);
    let parsed = parsed(parser).await?;
    match (failure, first_result) {
        (None, Some(first)) => Ok((parsed.0, parsed.1, parsed.2, first)),
        (Some(e), _) => Err(e.into()),
        (None, None) => Err(SyncError::Internal("the first step gave nothing".into())),
    }
}

fn entity_counts(entities: &mut EntityCounts, table: StageTable) -> &mut Counts {
    match table {
        StageTable::Schools => &mut entities.schools,
        StageTable::Users | StageTable::Roles | StageTable::Students => &mut entities.students,
        StageTable::Staff => &mut entities.staff,
        StageTable::Classes => &mut entities.classes,
        StageTable::Enrollments => &mut entities.enrollments,
        StageTable::Contacts => &mut entities.contacts,
        StageTable::Links => &mut entities.links,
    }
}

/// Drops the staged rows of erased pairs, then lists the staged contacts' warnings: a
/// report never quotes what the SIS still says of an erased person.
async fn skip_erased_then_warn(
    conn: &mut ImportConn,
    run: &Run<'_>,
    outcome: &mut Outcome,
) -> Result<(), DbErr> {
    outcome.entities.erased_links_skipped =
        erasures::skip_erased(conn, run.tenant.id, &run.request.privacy).await?;
    checks::contact_warnings(conn, &run.files, &mut outcome.sink).await
}

async fn apply(
    conn: &mut ImportConn,
    privacy: &crate::privacy::PrivacyKey,
    tenant: &Tenant,
    now: chrono::DateTime<chrono::Utc>,
    entities: &mut EntityCounts,
    diff: &fast::Unchanged,
) -> Result<(), DbErr> {
    let presence = |table: fn(&fast::Unchanged) -> fast::TableDiff| Presence::Changes {
        unchanged: table(diff).unchanged,
        insert_only: table(diff).insert_only,
    };
    let id = tenant.id.0;
    // Again under the lock: an erasure made since the warnings were listed holds too.
    entities.erased_links_skipped += erasures::skip_erased(conn, tenant.id, privacy).await?;
    let previous_run = conn
        .query(
            "SELECT MAX(started_at) AS previous_run FROM sync_runs WHERE tenant_id = $1 AND status = 'applied'",
            vec![Value::BigInt(Some(id))],
        )
        .await?
        .first()
        .and_then(|row| row.get("previous_run").ok().flatten());
    let targets = [
        &mut entities.schools,
        &mut entities.students,
        &mut entities.staff,
        &mut entities.classes,
    ];
    for (roster, counts) in reconcile::ROSTERS.iter().zip(targets) {
        // Of the rosters only students are diffed; the small ones are always staged whole.
        let presence = if roster.hashed {
            presence(|u| u.students)
        } else {
            Presence::Snapshot
        };
        keep_rejected(
            counts,
            reconcile::roster(conn, tenant.id, now, roster, presence).await?,
        );
    }
    keep_rejected(
        &mut entities.contacts,
        reconcile::contacts(conn, tenant.id, now, presence(|u| u.contacts)).await?,
    );
    let analyzed_early = crate::db::engine::temp::mid_run_statistics_pay_off(conn)
        && (diff.students.insert_only || diff.contacts.insert_only);
    if analyzed_early {
        // Enrollments and links are resolved against the rows just loaded.
        reconcile::refresh_statistics(conn, &reconcile::LIVE_TABLES[..5]).await?;
    }
    keep_rejected(
        &mut entities.enrollments,
        reconcile::enrollments(conn, tenant.id, now, presence(|u| u.enrollments)).await?,
    );
    keep_rejected(
        &mut entities.links,
        reconcile::links(conn, tenant.id, now, previous_run, presence(|u| u.links)).await?,
    );
    let links = &entities.links;
    crate::chats::banners::after_sync(
        conn,
        tenant.id,
        now,
        tenant.settings.auto_remove_inactive_guardians,
        (links.deactivated > 0, links.reactivated + links.created > 0),
    )
    .await?;
    let total = entities.total();
    if total.created > 0 && total.created * 10 >= total.created + total.unchanged {
        // After a large load; only the tables loaded since when the others were just done.
        let tables = if analyzed_early {
            &reconcile::LIVE_TABLES[5..]
        } else {
            &reconcile::LIVE_TABLES[..]
        };
        reconcile::refresh_statistics(conn, tables).await?;
    }
    Ok(())
}

fn keep_rejected(target: &mut Counts, applied: Counts) {
    let rejected = target.rejected;
    *target = Counts {
        rejected,
        ..applied
    };
}

/// The deletion guard and the missing-optional-file guard (SPEC §3.3).
async fn guards(
    conn: &mut ImportConn,
    request: &ImportRequest,
    tenant: &Tenant,
    files: &FileSet,
    outcome: &mut Outcome,
) -> Result<(), DbErr> {
    if request.force {
        return Ok(());
    }
    let links = &outcome.entities.links;
    let active_before = reconcile::active_links(conn, tenant.id).await? + links.deactivated
        - links.created
        - links.reactivated;
    let percent = tenant.settings.deletion_guard_percent.max(0) as u64;
    if active_before > 0 && links.deactivated * 100 > active_before * percent {
        outcome.sink.error(Issue::file(
            "(file set)",
            "deletion_guard",
            format!(
                "this snapshot would deactivate {} of {} active student-contact links ({:.1}%), more than the tenant's limit of {}%; check the files, or re-run with --force",
                links.deactivated,
                active_before,
                links.deactivated as f64 * 100.0 / active_before as f64,
                percent
            ),
        ));
    }
    for guarded in request.format.guarded_files() {
        let (file, deactivated) = (guarded.file, (guarded.deactivated)(&outcome.entities));
        if deactivated > 0 && !guarded.needed.iter().all(|f| files.has(f)) {
            outcome.sink.error(Issue::file(
                file,
                "missing_file_guard",
                format!("{file} is missing, which would deactivate {deactivated} rows that earlier syncs delivered; provide it, or re-run with --force to deactivate them"),
            ));
        }
    }
    Ok(())
}

/// The report of a run from its counts and issues: refused when there is any error, else
/// a dry run or applied.
fn build_report(
    request: &ImportRequest,
    tenant: &Tenant,
    entities: &EntityCounts,
    sink: &IssueSink,
    started_at: chrono::DateTime<chrono::Utc>,
) -> ImportReport {
    let status = if !sink.errors.is_empty() {
        RunStatus::Refused
    } else if request.dry_run {
        RunStatus::DryRun
    } else {
        RunStatus::Applied
    };
    let mut counts = entities.total();
    let rows_with_errors = sink.errors.iter().filter(|e| e.record.is_some()).count() as u64;
    counts.rejected = counts.rejected.max(rows_with_errors);
    ImportReport {
        run_id: None,
        tenant: tenant.slug.clone(),
        format: request.format.as_str().into(),
        source: request
            .source
            .clone()
            .unwrap_or_else(|| request.dir.display().to_string()),
        status,
        dry_run: request.dry_run,
        diffed: false,
        forced: request.force,
        counts,
        rows_written: if status == RunStatus::Applied {
            entities.total().written()
        } else {
            0
        },
        entities: entities.clone(),
        error_cap_reached: sink.full(),
        errors: sink.errors.clone(),
        warnings: sink.warnings.clone(),
        warning_count: sink.warning_count,
        started_at,
        duration_ms: (chrono::Utc::now() - started_at).num_milliseconds().max(0) as u64,
    }
}

/// Stores the run and its audit entry on `conn`; returns the run id.
async fn record_run(
    conn: &mut ImportConn,
    tenant: &Tenant,
    request: &ImportRequest,
    report: &ImportReport,
) -> Result<i64, DbErr> {
    let c = report.counts;
    let int = |n: u64| Set(n as i64);
    let mut insert = sync_run::Entity::insert(sync_run::ActiveModel {
        tenant_id: Set(tenant.id.0),
        format: Set(report.format.clone()),
        source: Set(report.source.clone()),
        status: Set(report.status),
        dry_run: Set(report.dry_run),
        forced: Set(report.forced),
        started_at: Set(report.started_at),
        finished_at: Set(chrono::Utc::now()),
        created: int(c.created),
        updated: int(c.updated),
        unchanged: int(c.unchanged),
        reactivated: int(c.reactivated),
        deactivated: int(c.deactivated),
        rejected: int(c.rejected),
        error_count: int(report.errors.len() as u64),
        warning_count: int(report.warning_count),
        report: Set(serde_json::to_string(report).unwrap_or_default()),
        ..Default::default()
    });
    insert.query().returning_col(sync_run::Column::Id);
    let rows = conn.query_built(insert.build(conn.backend())).await?;
    let id = rows
        .first()
        .map(|row| row.get::<Option<i64>>("id"))
        .transpose()?
        .flatten()
        .unwrap_or_default();
    audit::record_in(
        conn,
        AuditEntry {
            tenant_id: Some(tenant.id),
            actor: &request.actor,
            action: match report.status {
                RunStatus::Applied => "import.applied",
                RunStatus::DryRun => "import.dry_run",
                RunStatus::Refused => "import.refused",
                RunStatus::Failed => "import.failed",
            },
            target: Some(format!("sync_run:{id}")),
            before: None,
            after: Some(serde_json::json!({
                "format": report.format, "source": report.source, "forced": report.forced,
                "counts": report.counts, "errors": report.errors.len(),
            })),
        },
    )
    .await?;
    Ok(id)
}
