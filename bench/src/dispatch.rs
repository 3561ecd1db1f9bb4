//! `parent-connection-bench dispatch`: outbox delivery throughput to a local SMTP sink.
//!
//! An in-process SMTP sink on loopback (`parent_connection_testkit::smtp`: it answers every
//! command at once and counts each delivered Message-ID) receives, in the same run:
//! 1. lettre's own pooled transport on one connection (Nagle on): the stall to avoid;
//! 2. the project's mailer alone, no database: the transport ceiling of this machine;
//! 3. the dispatcher draining N queued invitations from the outbox (claim, render, send,
//!    record), on SQLite and optionally PostgreSQL;
//! 4. the same under injected faults — 5% of messages answered `451` (transient) and 1%
//!    dropped after the data (the connection closes before the answer) — checking that
//!    every message arrives (0 lost) and counting the duplicates the drops cause.

use crate::measure::{self, Machine};
use crate::sql::{count, exec};
use anyhow::{Result, bail};
use parent_connection::config::{Config, DatabaseConfig};
use parent_connection::outbox::Outgoing;
use parent_connection::outbox::email::{MailTarget, Mailer};
use parent_connection_testkit::pg;
use parent_connection_testkit::smtp::{Answers, Faults, Sink};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `dispatch`.
#[derive(Debug, Clone, clap::Args)]
pub struct DispatchBenchArgs {
    /// Messages per outbox run.
    #[arg(long, value_name = "N", default_value_t = 50_000)]
    pub messages: u64,
    /// Also benchmark PostgreSQL (a fresh database bench_dispatch_<pid> is created there and
    /// dropped at the end).
    #[arg(
        long,
        value_name = "URL",
        env = "BENCH_POSTGRES_URL",
        hide_env_values = true
    )]
    pub postgres_url: Option<String>,
    /// Markdown file whose dispatch section is (re)written.
    #[arg(long, value_name = "FILE", default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
}

/// A test message.
fn message(i: u64) -> Outgoing {
    Outgoing {
        message_id: format!("<bench.{i}@parent-connection.local>"),
        to: format!("guardian{i}@example.com"),
        subject: Some("Sam Lee invited you to Parent Connection".into()),
        body: "Hello,\n\nSam Lee invited you to chat about Ava in Parent Connection.\n\nJoin here:\nhttp://localhost:8080/join/0123456789abcdef\n".into(),
        list_unsubscribe: None,
        language: None,
    }
}

/// Messages per second of lettre's own transport on one pooled connection (Nagle on).
async fn lettre_default(sink: &Sink, messages: u64) -> Result<f64> {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let transport: AsyncSmtpTransport<Tokio1Executor> =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(sink.port())
            .pool_config(lettre::transport::smtp::PoolConfig::new().max_size(1))
            .build();
    let mailer = Mailer::new(
        MailTarget::parse(&sink.url()).map_err(anyhow::Error::msg)?,
        "Parent Connection <no-reply@parent-connection.local>",
        1,
        Duration::from_secs(30),
    )
    .map_err(anyhow::Error::msg)?;
    // Connect once before timing, as the pool would.
    transport
        .send(
            mailer
                .build(&message(0))
                .map_err(|e| anyhow::anyhow!(e.reason))?,
        )
        .await?;
    let started = Instant::now();
    for i in 1..=messages {
        let email = mailer
            .build(&message(i))
            .map_err(|e| anyhow::anyhow!(e.reason))?;
        transport.send(email).await?;
    }
    Ok(messages as f64 / started.elapsed().as_secs_f64())
}

/// Messages per second of the project's mailer alone (pool of `pool` connections).
async fn mailer_alone(sink: &Sink, messages: u64, pool: usize) -> Result<f64> {
    use futures_util::StreamExt;
    let mailer = Mailer::new(
        MailTarget::parse(&sink.url()).map_err(anyhow::Error::msg)?,
        "Parent Connection <no-reply@parent-connection.local>",
        pool,
        Duration::from_secs(30),
    )
    .map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let mut sends = futures_util::stream::iter(0..messages)
        .map(|i| {
            let mailer = &mailer;
            async move { mailer.send(&message(1_000_000 + i)).await }
        })
        .buffer_unordered(pool * 2);
    while let Some(result) = sends.next().await {
        result.map_err(|e| anyhow::anyhow!(e.reason))?;
    }
    Ok(messages as f64 / started.elapsed().as_secs_f64())
}

/// Creates a tenant with one chat and `n` queued invitations with their outbox rows.
async fn seed(db: &sea_orm::DatabaseConnection, n: u64) -> Result<()> {
    let now = sea_orm::Value::ChronoDateTimeUtc(Some(chrono::Utc::now()));
    parent_connection::tenants::create(
        db,
        &parent_connection::domain::TenantSlug::parse("bench").map_err(anyhow::Error::msg)?,
        "Bench District",
        parent_connection::domain::Region::default(),
        20,
        "bench",
    )
    .await?;
    for sql in [
        "INSERT INTO students (tenant_id, source_id, given_name, family_name, status, created_at, updated_at) VALUES (1, 'stu-1', 'Ava', 'Ng', 'active', $1, $1)",
        "INSERT INTO staff (tenant_id, source_id, given_name, family_name, role, status, created_at, updated_at) VALUES (1, 'tch-1', 'Sam', 'Lee', 'teacher', 'active', $1, $1)",
        "INSERT INTO contacts (tenant_id, source_key, given_name, family_name, email, created_at, updated_at) VALUES (1, 'par-1', 'Linda', 'Ng', 'linda@example.com', $1, $1)",
        "INSERT INTO chats (tenant_id, owner_source_id, student_id, student_source_id, started_by, created_at, updated_at) VALUES (1, 'tch-1', 1, 'stu-1', 'owner', $1, $1)",
    ] {
        exec(db, sql, vec![now.clone()]).await?;
    }
    let series =
        format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})");
    exec(
        db,
        &format!(
            "INSERT INTO invitations (tenant_id, chat_id, contact_id, channel, recipient, trigger, invited_by, join_token, created_at) \
             {series} SELECT 1, 1, 1, 'email', 'g' || CAST(i AS TEXT) || '@example.com', 'new_chat', 'tch-1', 'token' || CAST(i AS TEXT), $1 FROM n"
        ),
        vec![now.clone()],
    )
    .await?;
    exec(
        db,
        "INSERT INTO outbox (tenant_id, kind, ref_id, channel, recipient, status, attempts, next_attempt_at, created_at, updated_at) \
         SELECT 1, 'invitation', id, 'email', recipient, 'queued', 0, $1, $1, $1 FROM invitations ORDER BY id",
        vec![now],
    )
    .await?;
    Ok(())
}

/// One outbox run's figures.
#[derive(Debug, Clone)]
struct OutboxRun {
    engine: String,
    faults: bool,
    messages: u64,
    seconds: f64,
    delivered: u64,
    duplicates: u64,
    transient: u64,
    dropped: u64,
    rounds_sent: u64,
    peak_rss: u64,
}

/// `base` with `url` for the database and the dispatcher tuned for throughput into `sink`.
pub fn sink_config(base: &Config, url: &str, sink: &Sink) -> Config {
    let mut config = base.clone();
    config.database.url = url.to_string();
    config.mail.url = sink.url();
    config.mail.pool_size = 16;
    config.outbox.batch_size = 1000;
    config.outbox.concurrency = 32;
    config.outbox.email_per_second = 1_000_000;
    config.outbox.max_attempts = 50;
    // Retries right away, so the run measures delivery, not waiting.
    config.outbox.backoff_base_seconds = 0;
    config
}

/// Drains `n` queued invitations into a sink with `faults`.
async fn outbox_run(
    base: &Config,
    url: &str,
    engine: &str,
    n: u64,
    faults: Faults,
) -> Result<OutboxRun> {
    let sink = Sink::start(Answers::Faults(faults)).await?;
    let config = sink_config(base, url, &sink);
    let db = parent_connection::db::connect(&config.database).await?;
    parent_connection::db::migrate(&db).await?;
    seed(&db, n).await?;
    let dispatcher =
        parent_connection::server::dispatcher(db.clone(), &config).map_err(anyhow::Error::msg)?;
    let meter = measure::PhaseMeter::start();
    let stats = dispatcher.drain().await?;
    let cost = meter.stop();
    let seconds = cost.wall.as_secs_f64();
    let peak_rss = cost.peak_rss_kib.unwrap_or(0) * 1024;
    let left = count(
        &db,
        "SELECT COUNT(*) AS n FROM outbox WHERE status <> 'sent'",
        vec![],
    )
    .await?;
    db.close().await.ok();
    if left > 0 {
        bail!("{left} messages were not sent on {engine}");
    }
    Ok(OutboxRun {
        engine: engine.to_string(),
        faults: faults.transient_per_mille > 0,
        messages: n,
        seconds,
        delivered: sink.unique(),
        duplicates: sink.duplicates(),
        transient: sink.replied(),
        dropped: sink.dropped(),
        rounds_sent: stats.sent,
        peak_rss,
    })
}

/// Runs the benchmark and rewrites the dispatch section of `args.out`.
pub async fn run(args: &DispatchBenchArgs, config: &Config) -> Result<()> {
    let started_at = chrono::Utc::now();
    let machine = Machine::detect();
    let clean = Sink::accept_all().await?;
    eprintln!("lettre's own transport, one connection …");
    let lettre_rate = lettre_default(&clean, 200).await?;
    eprintln!("the mailer alone …");
    let ceiling = mailer_alone(&clean, args.messages.min(20_000), 16).await?;
    let dir = tempfile::tempdir()?;
    let mut engines = vec![(
        "SQLite".to_string(),
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        ),
        None,
    )];
    let mut postgres = None;
    if let Some(admin_url) = &args.postgres_url {
        let name = format!("bench_dispatch_{}", std::process::id());
        let url = pg::create_database(admin_url, &name).await?;
        engines.push(("PostgreSQL".into(), url, Some(name.clone())));
        postgres = Some((admin_url, name));
    }
    let mut runs = Vec::new();
    for (engine, url, _) in &engines {
        for (faults, label) in [
            (Faults::default(), "clean"),
            (
                Faults {
                    transient_per_mille: 50,
                    dropped_per_mille: 10,
                },
                "faults",
            ),
        ] {
            eprintln!(
                "{engine}: {} messages through the outbox ({label}) …",
                args.messages
            );
            // A fresh database per run (SQLite: a new file; PostgreSQL: emptied tables).
            let url = if engine == "SQLite" {
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join(format!("bench-{label}.db")).display()
                )
            } else {
                let db = parent_connection::db::connect(&DatabaseConfig {
                    url: url.clone(),
                    ..config.database.clone()
                })
                .await?;
                parent_connection::db::migrate(&db).await?;
                exec(&db, "TRUNCATE outbox, invitations, chats, contacts, staff, students, audit_log, tenant_settings, tenants RESTART IDENTITY CASCADE", vec![]).await?;
                db.close().await.ok();
                url.clone()
            };
            runs.push(outbox_run(config, &url, engine, args.messages, faults).await?);
        }
    }
    if let Some((admin_url, name)) = postgres {
        pg::drop_database(admin_url, &name).await?;
    }
    let text = markdown(&machine, started_at, lettre_rate, ceiling, &runs);
    crate::sections::write(&args.out, "dispatch", &text)?;
    eprintln!("wrote {}", args.out.display());
    for run in &runs {
        println!(
            "{} {}: {:.0} messages/s, {} delivered, {} duplicates",
            run.engine,
            if run.faults { "with faults" } else { "clean" },
            run.messages as f64 / run.seconds,
            run.delivered,
            run.duplicates
        );
    }
    Ok(())
}

fn markdown(
    machine: &Machine,
    started_at: chrono::DateTime<chrono::Utc>,
    lettre_rate: f64,
    ceiling: f64,
    runs: &[OutboxRun],
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Dispatch benchmark\n");
    let _ = writeln!(
        md,
        "Written by `parent-connection-bench dispatch` (`bench/src/dispatch.rs`). An in-process SMTP sink on\n\
         loopback receives every message and counts each Message-ID. Faults: 5% of messages answered `451`\n\
         (retried), 1% dropped after the data (the sink keeps the message but closes the connection before\n\
         answering, as a lost acknowledgement; the retry delivers it again with the same Message-ID). Retries are immediate in this run (`backoff_base_seconds = 0`).\n"
    );
    let _ = writeln!(
        md,
        "- **Date (UTC):** {}",
        started_at.format("%Y-%m-%d %H:%M")
    );
    let _ = writeln!(md, "- **Commit:** `{}`", measure::git_commit());
    md.push_str(&measure::machine_lines(machine));
    let _ = writeln!(
        md,
        "- **Settings:** `mail.pool_size` = 16, `outbox.batch_size` = 1000, `outbox.concurrency` = 32\n"
    );
    let _ = writeln!(md, "| what | messages/s |\n|---|---|");
    let _ = writeln!(
        md,
        "| lettre's own pooled transport, one connection (Nagle on) | {lettre_rate:.0} |"
    );
    let _ = writeln!(
        md,
        "| the mailer alone, 16 connections with `TCP_NODELAY`, no database (the ceiling) | {ceiling:.0} |"
    );
    for run in runs {
        let rate = run.messages as f64 / run.seconds;
        let _ = writeln!(
            md,
            "| outbox → dispatcher → sink, {}, {} | {rate:.0} ({:.0}% of the ceiling) |",
            run.engine,
            if run.faults { "with faults" } else { "clean" },
            rate * 100.0 / ceiling
        );
    }
    let _ = writeln!(
        md,
        "\n| run | messages | seconds | delivered | lost | duplicates | 451s | drops | peak RSS | target ≥ 5,000/s |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for run in runs {
        let rate = run.messages as f64 / run.seconds;
        let _ = writeln!(
            md,
            "| {} {} | {} | {:.1} | {} | {} | {} | {} | {} | {:.0} MiB | {} |",
            run.engine,
            if run.faults { "faults" } else { "clean" },
            run.messages,
            run.seconds,
            run.delivered,
            run.messages.saturating_sub(run.delivered),
            run.duplicates,
            run.transient,
            run.dropped,
            run.peak_rss as f64 / (1u64 << 20) as f64,
            if rate >= 5000.0 { "met" } else { "**NOT met**" }
        );
    }
    let _ = run_count_note(&mut md, runs);
    md
}

fn run_count_note(md: &mut String, runs: &[OutboxRun]) -> std::fmt::Result {
    let sent: u64 = runs.iter().map(|r| r.rounds_sent).sum();
    writeln!(
        md,
        "\nEvery run ends with every outbox row `sent` ({sent} sends recorded in all); a lost message would fail the run."
    )
}
