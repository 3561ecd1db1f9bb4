//! `parent-connection-bench digest`: a weekly digest run at district scale.
//!
//! Generates, with set-based SQL in a fresh database, F families of two guardians and two
//! children each (so 2F guardians with two children each), children in groups of 25 that
//! share 7 classes, and 3 assignments per class in each of the two windows of the week;
//! then times a real `digest run` (compose and enqueue: one `digest_deliveries` row per
//! guardian) and a dispatcher sending every digest to an SMTP sink, and measures peak
//! RSS and how much the delivery and outbox tables grew after each. The run, its re-run and
//! the dispatcher are the product's own commands (`parent-connection digest run`,
//! `dispatch --once`), each in a child process of the product binary.

use crate::measure::{self, Machine};
use crate::product::{ChildRun, ProductBin};
use crate::sql::exec;
use anyhow::{Context, Result};
use parent_connection::config::Config;
use parent_connection_testkit::pg;
use parent_connection_testkit::smtp::Sink;
use sea_orm::{DatabaseConnection, Value};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

/// Options of `digest`.
#[derive(Debug, Clone, clap::Args)]
pub struct DigestBenchArgs {
    /// Guardians (two per family, two children per family).
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub guardians: u64,
    /// Also benchmark PostgreSQL (a fresh database bench_digest_<pid>, dropped at the end).
    #[arg(
        long,
        value_name = "URL",
        env = "BENCH_POSTGRES_URL",
        hide_env_values = true
    )]
    pub postgres_url: Option<String>,
    /// Markdown file whose digest section is (re)written.
    #[arg(long, value_name = "FILE", default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
    /// Keep the SQLite benchmark database at FILE for inspection (it must not exist;
    /// default: a temporary file, removed at the end).
    #[arg(long, value_name = "FILE")]
    pub keep_sqlite: Option<PathBuf>,
}

/// The benchmark's week: 2026-W48, due Saturday 2026-11-28 08:00 New York.
const WEEK: &str = "2026-W48";

/// The privacy key (`privacy.hash_key`) of the benchmark's product commands: the
/// dispatcher needs one on PostgreSQL to check email suppressions.
const PRIVACY_KEY: &str = "62656e6368206469676573742070726976616379206b65792e2e2e2e2e2e2e2e";

/// The week after: its previous window holds the upcoming assignments of [`WEEK`].
const NEXT_WEEK: &str = "2026-W49";

/// One engine's figures.
struct Figures {
    engine: String,
    generate_seconds: f64,
    queue_seconds: f64,
    queued: u64,
    rerun_seconds: f64,
    peak_rss_kib: u64,
    growth_bytes: u64,
    dispatch: Dispatched,
}

/// The week's digests rendered and sent to a local SMTP sink.
struct Dispatched {
    seconds: f64,
    delivered: u64,
    duplicates: u64,
    peak_rss_kib: u64,
    growth_bytes: u64,
    next_week_queued: u64,
    next_week_growth_bytes: u64,
    /// The disclosure log (entries, their students and indexes) once the first week is sent.
    log_bytes: u64,
    /// Of it, the compressed texts themselves.
    text_bytes: u64,
}

/// The arguments of `digest run` for the tenant `bench` and `week`.
fn digest_run(week: &str) -> [&str; 7] {
    [
        "digest", "run", "--tenant", "bench", "--week", week, "--json",
    ]
}

/// Digests a `digest run --json` queued.
fn queued_of(run: &ChildRun) -> Result<u64> {
    let report: serde_json::Value = serde_json::from_str(&run.stdout)
        .with_context(|| format!("digest run printed {:?}", run.stdout))?;
    Ok(report["queued"].as_u64().unwrap_or(0))
}

fn series(n: u64) -> String {
    format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})")
}

/// Fills a fresh tenant (id 1) with the families, classes and assignments.
async fn generate(db: &DatabaseConnection, guardians: u64) -> Result<()> {
    let families = guardians.div_ceil(2);
    let students = families * 2;
    let groups = students.div_ceil(25);
    let classes = groups * 7;
    let now = Value::ChronoDateTimeUtc(Some(chrono::Utc::now()));
    parent_connection::tenants::create(
        db,
        &parent_connection::domain::TenantSlug::parse("bench").map_err(anyhow::Error::msg)?,
        "Bench District",
        parent_connection::domain::Region::default(),
        20,
        "bench",
    )
    .await?;
    exec(
        db,
        "UPDATE tenant_settings SET digest_enabled = TRUE",
        vec![],
    )
    .await?;
    let steps = [
        format!(
            "INSERT INTO students (tenant_id, source_id, given_name, family_name, status, created_at, updated_at) {} SELECT 1, 's' || CAST(i AS TEXT), 'Kid', CAST(i AS TEXT), 'active', $1, $1 FROM n",
            series(students)
        ),
        format!(
            "INSERT INTO contacts (tenant_id, source_key, given_name, family_name, email, created_at, updated_at) {} SELECT 1, 'g' || CAST(i AS TEXT), 'Guardian', CAST(i AS TEXT), 'g' || CAST(i AS TEXT) || '@example.com', $1, $1 FROM n",
            series(families * 2)
        ),
        // Guardians 2f-1 and 2f are the parent and guardian of children 2f-1 and 2f.
        format!(
            "INSERT INTO student_contacts (tenant_id, student_id, contact_id, relationship, relationship_provenance, relationship_changed_at, status, first_seen_at, last_seen_at, updated_at) \
                 {} SELECT 1, ((i - 1) / 4) * 2 + 1 + ((i - 1) % 2), ((i - 1) / 4) * 2 + 1 + ((i - 1) / 2) % 2, CASE WHEN (i - 1) / 2 % 2 = 0 THEN 'parent' ELSE 'guardian' END, 'sync', $1, 'active', $1, $1, $1 FROM n",
            series(families * 4)
        ),
        format!(
            "INSERT INTO classes (tenant_id, source_id, title, status, created_at, updated_at) {} SELECT 1, 'c' || CAST(i AS TEXT), 'Class ' || CAST(i AS TEXT), 'active', $1, $1 FROM n",
            series(classes)
        ),
        // Child s sits in the 7 classes of its group of 25.
        format!(
            "INSERT INTO enrollments (tenant_id, class_id, role, person_id, status, created_at, updated_at) \
                 {} SELECT 1, ((i - 1) / 7 / 25) * 7 + ((i - 1) % 7) + 1, 'student', (i - 1) / 7 + 1, 'active', $1, $1 FROM n",
            series(students * 7)
        ),
    ];
    for sql in &steps {
        exec(db, sql, vec![now.clone()]).await?;
    }
    // 3 assignments per class due in the previous week and 3 in the upcoming one.
    let due = |days: i64| {
        chrono::DateTime::parse_from_rfc3339("2026-11-28T13:00:00Z")
            .map(|t| t.to_utc() + chrono::Duration::days(days))
    };
    for (slot, days) in [(1, -6), (2, -4), (3, -2), (4, 1), (5, 3), (6, 5)] {
        exec(
            db,
            &format!(
                "INSERT INTO assignments (tenant_id, class_id, external_id, title, due_at, due_offset_seconds, points, created_by, created_at, updated_at) \
                 {} SELECT 1, i, 'a{slot}-' || CAST(i AS TEXT), 'Assignment {slot}', $2, -18000, 10, 'bench', $1, $1 FROM n",
                series(classes)
            ),
            vec![now.clone(), Value::ChronoDateTimeUtc(Some(due(days)?))],
        )
        .await?;
    }
    // Fresh statistics for the planners, as after any large load (on SQLite for every
    // table: statistics on only some of them gave a 15x slower digest plan).
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        exec(db, "ANALYZE", vec![]).await?;
        return Ok(());
    }
    for table in [
        "students",
        "contacts",
        "student_contacts",
        "classes",
        "enrollments",
        "assignments",
    ] {
        exec(db, &format!("ANALYZE {table}"), vec![]).await?;
    }
    Ok(())
}

/// The tables of the disclosure log.
const LOG_TABLES: &str = "'disclosures', 'disclosure_students'";

/// Bytes the disclosure log takes (tables and indexes; SQLite: from `dbstat`), and of it
/// the stored texts (`body_deflate`, or `body` for entries from before it).
async fn log_bytes(db: &DatabaseConnection) -> Result<(u64, u64)> {
    let total = if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        "SELECT CAST(pg_total_relation_size('disclosures') + pg_total_relation_size('disclosure_students') AS BIGINT) AS n"
            .to_string()
    } else {
        format!(
            "SELECT CAST(COALESCE(SUM(pgsize), 0) AS BIGINT) AS n FROM dbstat \
             WHERE name IN (SELECT name FROM sqlite_master WHERE tbl_name IN ({LOG_TABLES}))"
        )
    };
    let total = crate::sql::count(db, &total, vec![]).await?;
    let texts = crate::sql::count(
        db,
        "SELECT CAST(COALESCE(SUM(COALESCE(LENGTH(body_deflate), 0) + COALESCE(LENGTH(body), 0)), 0) AS BIGINT) AS n FROM disclosures",
        vec![],
    )
    .await?;
    Ok((total as u64, texts as u64))
}

/// Bytes the delivery, outbox and disclosure tables take.
async fn table_bytes(
    db: &DatabaseConnection,
    sqlite_file: Option<&std::path::Path>,
) -> Result<u64> {
    match sqlite_file {
        Some(file) => {
            exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", vec![]).await?;
            Ok(std::fs::metadata(file).map(|m| m.len()).unwrap_or(0))
        }
        None => Ok(crate::sql::count(
            db,
            "SELECT CAST(pg_total_relation_size('outbox') + pg_total_relation_size('digest_deliveries') \
               + pg_total_relation_size('disclosures') + pg_total_relation_size('disclosure_students') AS BIGINT) AS n",
            vec![],
        )
        .await? as u64),
    }
}

async fn run_engine(
    product: &ProductBin,
    config: &Config,
    engine: &str,
    url: &str,
    sqlite_file: Option<PathBuf>,
    guardians: u64,
) -> Result<Figures> {
    let mut database = config.database.clone();
    database.url = url.to_string();
    let db = parent_connection::db::connect(&database).await?;
    parent_connection::db::migrate(&db).await?;
    eprintln!("{engine}: generating {guardians} guardians …");
    let started = Instant::now();
    generate(&db, guardians).await?;
    let generate_seconds = started.elapsed().as_secs_f64();
    let before = table_bytes(&db, sqlite_file.as_deref()).await?;
    eprintln!("{engine}: digest run …");
    // The real command in a fresh process, so its peak RSS is the run's own.
    // The privacy key: the dispatcher needs one on PostgreSQL (email suppressions).
    let database = [
        ("DATABASE_URL", url.to_string()),
        ("PARENT_CONNECTION__DATABASE__URL", url.to_string()),
        (
            "PARENT_CONNECTION__PRIVACY__HASH_KEY",
            PRIVACY_KEY.to_string(),
        ),
    ];
    let queued_run = product.run_measured(&digest_run(WEEK), &database).await?;
    let queued = queued_of(&queued_run)?;
    let after = table_bytes(&db, sqlite_file.as_deref()).await?;
    // The same week again: nothing is left to queue.
    let rerun = product.run_measured(&digest_run(WEEK), &database).await?;
    let again = queued_of(&rerun)?;
    anyhow::ensure!(again == 0, "a re-run queued {again} digests");
    let rerun_seconds = rerun.seconds;
    eprintln!("{engine}: dispatching {queued} digests to a local SMTP sink …");
    let sink = Sink::accept_all().await?;
    let tuned = crate::dispatch::sink_config(config, url, &sink);
    let mut env = database.to_vec();
    for (key, value) in [
        ("MAIL_URL", tuned.mail.url.clone()),
        (
            "PARENT_CONNECTION__MAIL__POOL_SIZE",
            tuned.mail.pool_size.to_string(),
        ),
        (
            "PARENT_CONNECTION__OUTBOX__BATCH_SIZE",
            tuned.outbox.batch_size.to_string(),
        ),
        (
            "PARENT_CONNECTION__OUTBOX__CONCURRENCY",
            tuned.outbox.concurrency.to_string(),
        ),
        (
            "PARENT_CONNECTION__OUTBOX__EMAIL_PER_SECOND",
            tuned.outbox.email_per_second.to_string(),
        ),
        (
            "PARENT_CONNECTION__OUTBOX__MAX_ATTEMPTS",
            tuned.outbox.max_attempts.to_string(),
        ),
        (
            "PARENT_CONNECTION__OUTBOX__BACKOFF_BASE_SECONDS",
            tuned.outbox.backoff_base_seconds.to_string(),
        ),
    ] {
        env.push((key, value));
    }
    let sent = product
        .run_measured(&["dispatch", "--once", "--json"], &env)
        .await?;
    let after_sends = table_bytes(&db, sqlite_file.as_deref()).await?;
    let (delivered, duplicates) = (sink.unique(), sink.duplicates());
    let (log_bytes, text_bytes) = log_bytes(&db).await?;
    // The next week, as in a service that runs every week: what a run costs once the space
    // freed by the previous one's sent outbox rows is reused.
    eprintln!("{engine}: the next week ({NEXT_WEEK}): run and send …");
    let next_run = product
        .run_measured(&digest_run(NEXT_WEEK), &database)
        .await?;
    let next_week_queued = queued_of(&next_run)?;
    product
        .run_measured(&["dispatch", "--once", "--json"], &env)
        .await?;
    let dispatch = Dispatched {
        seconds: sent.seconds,
        delivered,
        duplicates,
        peak_rss_kib: sent.peak_rss_kib,
        growth_bytes: after_sends.saturating_sub(before),
        next_week_queued,
        log_bytes,
        text_bytes,
        next_week_growth_bytes: table_bytes(&db, sqlite_file.as_deref())
            .await?
            .saturating_sub(after_sends),
    };
    db.close().await.ok();
    eprintln!(
        "{engine}: {} of {queued} digests sent in {:.1} s ({:.0}/s), {} duplicates; growth {} MiB, disclosure log {} MiB (texts {} MiB); next week {} MiB",
        dispatch.delivered,
        dispatch.seconds,
        dispatch.delivered as f64 / dispatch.seconds.max(1e-9),
        dispatch.duplicates,
        dispatch.growth_bytes >> 20,
        dispatch.log_bytes >> 20,
        dispatch.text_bytes >> 20,
        dispatch.next_week_growth_bytes >> 20
    );
    Ok(Figures {
        engine: engine.into(),
        generate_seconds,
        queue_seconds: queued_run.seconds,
        queued,
        rerun_seconds,
        peak_rss_kib: queued_run.peak_rss_kib,
        growth_bytes: after.saturating_sub(before),
        dispatch,
    })
}

/// Runs the benchmark and rewrites the digest section of `args.out`.
pub async fn run(args: &DigestBenchArgs, config: &Config, product: &ProductBin) -> Result<()> {
    let started_at = chrono::Utc::now();
    let machine = Machine::detect();
    let dir = tempfile::tempdir()?;
    let file = match &args.keep_sqlite {
        Some(path) => {
            anyhow::ensure!(!path.exists(), "{} exists already", path.display());
            path.clone()
        }
        None => dir.path().join("digest.db"),
    };
    let mut figures = vec![
        run_engine(
            product,
            config,
            "SQLite",
            &format!("sqlite://{}?mode=rwc", file.display()),
            Some(file.clone()),
            args.guardians,
        )
        .await?,
    ];
    if let Some(admin_url) = &args.postgres_url {
        let name = format!("bench_digest_{}", std::process::id());
        let url = pg::create_database(admin_url, &name).await?;
        let result = run_engine(product, config, "PostgreSQL", &url, None, args.guardians).await;
        if let Err(e) = &result {
            eprintln!("PostgreSQL run failed: {e:#}");
        }
        if let Err(e) = pg::drop_database(admin_url, &name).await {
            // Autovacuum may still be busy on the fresh tables; a role that is not a
            // superuser cannot end it.
            eprintln!(
                "note: could not drop the benchmark database {name} ({e:#}); drop it later by hand"
            );
        }
        figures.push(result?);
    }
    let mut md = String::from("## Digest benchmark\n\n");
    let _ = writeln!(
        md,
        "Written by `parent-connection-bench digest` (`bench/src/digest.rs`): {} guardians in families of two guardians \
         and two children, children in groups of 25 sharing 7 classes, 3 assignments per class in each window of week \
         {WEEK}. A real `digest run` composes and enqueues: one statement records a `digest_deliveries` row per guardian \
         (the disclosure log and the queue) and the run's id range. Then a dispatcher (`outbox.batch_size` 1000, 32 sends in flight) \
         hands the deliveries to the outbox a batch at a time, renders each email at send time and sends it to an \
         in-process SMTP sink on loopback; a sent digest's outbox row is removed. \
         The run and the dispatcher are the real `digest run --json` and `dispatch --once --json` commands, each in a fresh process; peak RSS is that process's high-water mark (`VmHWM`, read every 20 ms while it runs). Growth is what the delivery, outbox and disclosure-log tables take \
         (`digest_deliveries`, `outbox`, `disclosures`, `disclosure_students`, with their indexes) more than before the run (PostgreSQL: `pg_total_relation_size`; SQLite: the database file after a checkpoint), \
         measured right after the run, once every digest is sent, and over the whole next week \
         ({NEXT_WEEK}: its run and its sends), when the space the first week's sent outbox rows left is reused.\n",
        args.guardians
    );
    md.push_str(
        "The disclosure log is on at its defaults (`outbox.disclosure_text_days` 365): every digest sent records its \
         recipient, students and exact text. Its column gives what its tables and indexes take once the week is sent \
         (PostgreSQL: `pg_total_relation_size`; SQLite: `dbstat`), and in brackets the stored texts alone (compressed, \
         docs/performance.md \"Digest delivery\"). The delivery target (≥ 5,000 digests/s) counts as met only with every \
         queued digest delivered once and no duplicate.\n\n",
    );
    let _ = writeln!(
        md,
        "- **Date (UTC):** {}",
        started_at.format("%Y-%m-%d %H:%M")
    );
    let _ = writeln!(md, "- **Commit:** `{}`", measure::git_commit());
    md.push_str(&measure::machine_lines(&machine));
    let verdict = |ok: bool| if ok { "met" } else { "**NOT met**" };
    let mib = |bytes: u64| bytes as f64 / (1u64 << 20) as f64;
    let _ = writeln!(
        md,
        "\n| engine | generate | compose + enqueue (target ≤ 60 s) | digests queued | re-run | peak RSS (target ≤ 512 MB) | growth after the run (target ≤ 200 MB) |\n|---|---|---|---|---|---|---|"
    );
    for f in &figures {
        let rss_mb = f.peak_rss_kib as f64 / 1024.0;
        let _ = writeln!(
            md,
            "| {} | {:.1} s | {:.1} s — {} | {} | {:.1} s | {:.0} MiB — {} | {:.0} MiB — {} |",
            f.engine,
            f.generate_seconds,
            f.queue_seconds,
            verdict(f.queue_seconds <= 60.0),
            f.queued,
            f.rerun_seconds,
            rss_mb,
            verdict(rss_mb <= 512.0),
            mib(f.growth_bytes),
            verdict(mib(f.growth_bytes) <= 200.0)
        );
    }
    let _ = writeln!(
        md,
        "\n| engine | digests sent to the sink | duplicates | send time | digests/s (target ≥ 5,000) | dispatcher peak RSS | growth once all are sent | disclosure log (of it, texts) | the next week: digests | the next week: growth, run + sends (target ≤ 200 MB) |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for f in &figures {
        let d = &f.dispatch;
        let rate = d.delivered as f64 / d.seconds.max(1e-9);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1} s | {:.0} — {} | {:.0} MiB | {:.0} MiB | {:.0} MiB ({:.0} MiB) | {} | {:.0} MiB — {} |",
            f.engine,
            d.delivered,
            d.duplicates,
            d.seconds,
            rate,
            verdict(rate >= 5000.0 && d.duplicates == 0 && d.delivered == f.queued),
            d.peak_rss_kib as f64 / 1024.0,
            mib(d.growth_bytes),
            mib(d.log_bytes),
            mib(d.text_bytes),
            d.next_week_queued,
            mib(d.next_week_growth_bytes),
            verdict(mib(d.next_week_growth_bytes) <= 200.0)
        );
    }
    crate::sections::write(&args.out, "digest", &md)?;
    eprintln!("wrote {}", args.out.display());
    for f in &figures {
        println!(
            "{}: {} digests queued in {:.1} s, peak RSS {} MiB, growth {} MiB; {} sent in {:.1} s ({:.0}/s), growth then {} MiB, disclosure log {} MiB",
            f.engine,
            f.queued,
            f.queue_seconds,
            f.peak_rss_kib / 1024,
            f.growth_bytes >> 20,
            f.dispatch.delivered,
            f.dispatch.seconds,
            f.dispatch.delivered as f64 / f.dispatch.seconds.max(1e-9),
            f.dispatch.growth_bytes >> 20,
            f.dispatch.log_bytes >> 20
        );
    }
    Ok(())
}
