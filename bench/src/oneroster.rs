//! The OneRoster benchmark (`parent-connection-bench oneroster`): the district of `import`
//! served by the testkit's OneRoster 1.1 provider (page by page from the seed, in this
//! process), then, per engine on a fresh database: the provider's own serving time alone (a
//! client that fetches every page and discards it), a full pull, and a delta pull after the
//! provider changed 1% of the contacts and dropped 0.5% of the links. Each pull is the real
//! `parent-connection sync oneroster` in a child process, so its wall time and peak RSS are
//! the sync's own. For the "full pull ≤ 1.5 × (CSV import + serving time)" target, the CSV
//! import of the same district runs too (`import`'s first-import phase, on its own fresh
//! database). The results go to the `oneroster` section of `BENCHMARKS.md`.

use crate::child::{self, ChildPhase};
use crate::measure;
use crate::product::ProductBin;
use crate::report::{mib, n, verdict};
use crate::sections;
use anyhow::{Context, Result, bail};
use parent_connection_testkit::generate;
use parent_connection_testkit::oneroster::{CLIENT_ID, CLIENT_SECRET, Changes, Provider};
use parent_connection_testkit::pg::{self, redact_url};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The key the product's children encrypt the stored client secret with (a benchmark key).
const SECRET_KEY: &str = "6263686d61726b2d6f6e65726f737465722d6b65792d6e6f742d736563726574";

/// Options of `oneroster`.
#[derive(Debug, Clone, clap::Args)]
pub struct OneRosterBenchArgs {
    /// Students in the district (the district of `import` with the same seed).
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub students: u64,
    /// Seed of the generator.
    #[arg(long, value_name = "S", default_value_t = 20_261_123)]
    pub seed: u64,
    /// Records asked per page (at most oneroster.max_page_size).
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub page_size: u64,
    /// Also benchmark PostgreSQL: URL of a server database the user may CREATE DATABASE
    /// from; fresh databases bench_oneroster_<pid>_* are created there and dropped.
    #[arg(
        long,
        value_name = "URL",
        env = "BENCH_POSTGRES_URL",
        hide_env_values = true
    )]
    pub postgres_url: Option<String>,
    /// Folder for the CSV files of the same district and the SQLite databases (default: a
    /// new folder under the system temporary folder, removed at the end).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Markdown file whose `oneroster` section is (re)written.
    #[arg(long, value_name = "FILE", default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
    /// Skip SQLite (only with --postgres-url).
    #[arg(long, requires = "postgres_url")]
    pub skip_sqlite: bool,
}

/// One timed process.
#[derive(Debug, Clone, Copy, Default)]
struct Timed {
    seconds: f64,
    peak_rss_kib: u64,
}

/// What one engine measured.
#[derive(Debug)]
struct EngineFigures {
    engine: &'static str,
    csv_import: Timed,
    full: Timed,
    full_summary: String,
    delta: Timed,
    delta_summary: String,
}

/// Runs the benchmark and rewrites the `oneroster` section of `args.out`.
pub async fn run(args: &OneRosterBenchArgs, product: &ProductBin) -> Result<()> {
    if args.skip_sqlite && args.postgres_url.is_none() {
        bail!("--skip-sqlite needs --postgres-url");
    }
    let work = args.work_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("parent-connection-bench-or-{}", std::process::id()))
    });
    let csv_dir = work.join("oneroster-csv");
    crate::import::remove_dir(&csv_dir)?;
    std::fs::create_dir_all(&work)?;
    let started_at = chrono::Utc::now();
    let load_before = measure::load_average();
    eprintln!(
        "oneroster: {} students (seed {}), work folder {}",
        args.students,
        args.seed,
        work.display()
    );
    let (students, seed, dir) = (args.students, args.seed, csv_dir.clone());
    tokio::task::spawn_blocking(move || generate::generate(&dir, students, seed))
        .await
        .context("the generator stopped")??;
    let provider = Provider::start_generated(args.students, args.seed).await?;
    let serving = serve_alone(&provider, args.page_size).await?;
    eprintln!(
        "oneroster: the provider serves every page alone in {:.1} s ({} records)",
        serving.0, serving.1
    );
    let mut figures = Vec::new();
    let mut changes = Changes::default();
    let result: Result<()> = async {
        if !args.skip_sqlite {
            let sqlite = work.join("oneroster-sqlite");
            crate::import::remove_dir(&sqlite)?;
            std::fs::create_dir_all(&sqlite)?;
            let url = |name: &str| format!("sqlite://{}?mode=rwc", sqlite.join(name).display());
            let engine = run_engine(
                "SQLite",
                (&url("pull.db"), &url("csv.db")),
                &provider,
                product,
                &csv_dir,
                args.page_size,
                &mut changes,
            )
            .await;
            crate::import::remove_dir(&sqlite)?;
            figures.push(engine?);
        }
        if let Some(server) = &args.postgres_url {
            let names = [
                format!("bench_oneroster_{}_pull", std::process::id()),
                format!("bench_oneroster_{}_csv", std::process::id()),
            ];
            let pull = pg::create_database(server, &names[0]).await?;
            let csv = pg::create_database(server, &names[1]).await;
            let engine = match csv {
                Ok(csv) => {
                    run_engine(
                        "PostgreSQL",
                        (&pull, &csv),
                        &provider,
                        product,
                        &csv_dir,
                        args.page_size,
                        &mut changes,
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            for name in &names {
                let _ = pg::drop_database(server, name).await;
            }
            eprintln!("oneroster: dropped the databases on {}", redact_url(server));
            figures.push(engine?);
        }
        Ok(())
    }
    .await;
    crate::import::remove_dir(&csv_dir)?;
    result?;
    let body = markdown(args, &figures, serving, changes, started_at, load_before);
    sections::write(&args.out, "oneroster", &body)?;
    eprintln!(
        "oneroster: wrote the oneroster section of {}",
        args.out.display()
    );
    Ok(())
}

/// The serving time alone: a client that fetches every page of every collection and
/// discards it. Returns the seconds and the records served.
async fn serve_alone(provider: &Provider, page_size: u64) -> Result<(f64, u64)> {
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(&provider.token_url)
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let started = Instant::now();
    let mut records = 0;
    for collection in ["orgs", "users", "classes", "enrollments"] {
        let mut offset = 0u64;
        loop {
            let url = format!(
                "{}/{collection}?limit={page_size}&offset={offset}",
                provider.base_url
            );
            let reply = http.get(&url).bearer_auth(&token).send().await?;
            let total: u64 = reply
                .headers()
                .get("x-total-count")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .context("no X-Total-Count")?;
            let body = reply.bytes().await?;
            drop(body);
            offset = (offset + page_size).min(total);
            if offset >= total {
                records += total;
                break;
            }
        }
    }
    Ok((started.elapsed().as_secs_f64(), records))
}

/// The CSV import, a full pull and a delta pull on one engine (`urls`: the pull's
/// database, the CSV import's database).
async fn run_engine(
    engine: &'static str,
    (pull_url, csv_url): (&str, &str),
    provider: &Provider,
    product: &ProductBin,
    csv_dir: &Path,
    page_size: u64,
    changes: &mut Changes,
) -> Result<EngineFigures> {
    eprintln!("{engine}: CSV import of the same district …");
    child::spawn(ChildPhase::Setup, csv_url, None).await?;
    let csv = child::spawn(ChildPhase::Import, csv_url, Some(csv_dir)).await?;
    let csv_import = Timed {
        seconds: csv.wall_ms as f64 / 1000.0,
        peak_rss_kib: csv.peak_rss_kib.unwrap_or(0),
    };
    eprintln!("{engine}: CSV import {:.1} s", csv_import.seconds);
    child::spawn(ChildPhase::Setup, pull_url, None).await?;
    provider.with(|s| {
        s.generated = Some(std::sync::Arc::new(
            s.generated.as_ref().expect("generated").original(),
        ));
        s.requests.clear();
    });
    let env = environment(pull_url);
    let page = page_size.to_string();
    let connect = [
        "oneroster",
        "connect",
        "--tenant",
        "bench",
        "--base-url",
        &provider.base_url,
        "--token-url",
        &provider.token_url,
        "--client-id",
        CLIENT_ID,
        "--page-size",
        &page,
    ];
    let mut connect_env = env.clone();
    connect_env.push(("ONEROSTER_CLIENT_SECRET", CLIENT_SECRET.to_string()));
    product.run_measured(&connect, &connect_env).await?;
    eprintln!("{engine}: full pull …");
    let full = product
        .run_measured(&["sync", "oneroster", "--tenant", "bench", "--json"], &env)
        .await?;
    let full_summary = summary(&full.stdout)?;
    eprintln!("{engine}: full pull {:.1} s: {full_summary}", full.seconds);
    *changes = provider.change_generated();
    eprintln!("{engine}: delta pull ({} users changed) …", changes.users);
    let delta = product
        .run_measured(
            &[
                "sync",
                "oneroster",
                "--tenant",
                "bench",
                "--delta",
                "--json",
            ],
            &env,
        )
        .await?;
    let delta_summary = summary(&delta.stdout)?;
    eprintln!(
        "{engine}: delta pull {:.1} s: {delta_summary}",
        delta.seconds
    );
    Ok(EngineFigures {
        engine,
        csv_import,
        full: Timed {
            seconds: full.seconds,
            peak_rss_kib: full.peak_rss_kib,
        },
        full_summary,
        delta: Timed {
            seconds: delta.seconds,
            peak_rss_kib: delta.peak_rss_kib,
        },
        delta_summary,
    })
}

/// The children's settings: the database, the benchmark's secret key, the provider on
/// loopback allowed, and every `agents` entry of a delta looked up.
fn environment(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", url.to_string()),
        ("PARENT_CONNECTION__DATABASE__URL", url.to_string()),
        (
            "PARENT_CONNECTION__ONEROSTER__SECRET_KEY",
            SECRET_KEY.into(),
        ),
        ("PARENT_CONNECTION__OUTBOUND__ALLOW_PRIVATE", "true".into()),
        (
            "PARENT_CONNECTION__ONEROSTER__MAX_DELTA_LOOKUPS",
            "10000000".into(),
        ),
        ("PARENT_CONNECTION__ONEROSTER__MAX_PAGES", "1000000".into()),
    ]
}

/// One line of a `sync oneroster --json` report: status, contacts and links counts.
fn summary(stdout: &str) -> Result<String> {
    let report: serde_json::Value =
        serde_json::from_str(stdout).context("the sync printed no JSON report")?;
    let status = report["status"].as_str().unwrap_or("?");
    if status != "applied" {
        bail!("the pull was not applied ({status}): {}", report["errors"]);
    }
    let counts = |entity: &str| {
        let e = &report["entities"][entity];
        format!(
            "{entity} +{} ~{} -{}",
            e["created"], e["updated"], e["deactivated"]
        )
    };
    Ok(format!(
        "{status}; {}; {}; {} warning(s)",
        counts("contacts"),
        counts("links"),
        report["warningCount"]
    ))
}

fn markdown(
    args: &OneRosterBenchArgs,
    figures: &[EngineFigures],
    (serving, records): (f64, u64),
    changes: Changes,
    started_at: chrono::DateTime<chrono::Utc>,
    load_before: Option<String>,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## OneRoster pull at district scale\n");
    let _ = writeln!(
        md,
        "`parent-connection-bench oneroster --students {} --page-size {}` on {} (commit {}, load average before: {}). \
         The testkit's OneRoster 1.1 provider serves the district of `import` (same seed) page by page from the seed, in the benchmark's process; \
         each pull is the real `parent-connection sync oneroster` in a child process (peak RSS: its `VmHWM`). \
         Serving alone (a client fetching every page of {} records and discarding it): **{serving:.2} s**. \
         The delta follows a change of {} contacts (new phone) and {} dropped links ({} users with a later dateLastModified).\n",
        n(args.students),
        args.page_size,
        started_at.format("%Y-%m-%d %H:%M UTC"),
        measure::git_commit(),
        load_before.as_deref().unwrap_or("unknown"),
        n(records),
        n(changes.contacts),
        n(changes.links),
        n(changes.users),
    );
    let _ = writeln!(
        md,
        "| engine | CSV import (its peak RSS) | full pull | full ≤ 1.5 × (CSV + serving) | full pull peak RSS (≤ 300 MB) | delta pull | delta peak RSS (≤ 300 MB) |\n|---|---|---|---|---|---|---|"
    );
    for f in figures {
        let allowance = 1.5 * (f.csv_import.seconds + serving);
        let rss = |t: Timed| t.peak_rss_kib as f64 / 1024.0 * 1.048_576;
        let _ = writeln!(
            md,
            "| {} | {:.1} s ({}) | {:.1} s | {} ({:.2}×, allowance {:.1} s) | {} {} | {:.1} s | {} {} |",
            f.engine,
            f.csv_import.seconds,
            mib(Some(f.csv_import.peak_rss_kib)),
            f.full.seconds,
            verdict(f.full.seconds <= allowance),
            f.full.seconds / (f.csv_import.seconds + serving),
            allowance,
            mib(Some(f.full.peak_rss_kib)),
            verdict(rss(f.full) <= 300.0),
            f.delta.seconds,
            mib(Some(f.delta.peak_rss_kib)),
            verdict(rss(f.delta) <= 300.0),
        );
    }
    let _ = writeln!(
        md,
        "\nA delta deactivates what it marks gone (users, orgs, classes, enrollments with `status: tobedeleted`, disabled users) \
         and the links dropped from both users' `agents` (both users come in the delta with the later dateLastModified).\n"
    );
    for f in figures {
        let _ = writeln!(
            md,
            "- {}: full pull {}; delta pull {}.",
            f.engine, f.full_summary, f.delta_summary
        );
    }
    md
}
