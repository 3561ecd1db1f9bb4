//! `crash`: the crash harness of Parent Connection (see `parent_connection_testkit::crash`).
//! It SIGKILLs the product at a seeded random point of an import, an approval, a digest run
//! and a dispatch, checks what the kill left behind, lets a restarted process finish, and
//! prints a Markdown table of the outcomes (the figures of RELIABILITY.md, "Crash safety").
//!
//! ```text
//! cargo build --release --bin parent-connection
//! cargo run --release -p parent-connection-testkit --bin crash -- --trials 100 --engine sqlite
//! ```

use anyhow::{Context, Result, bail};
use clap::Parser;
use parent_connection_testkit::crash::pgserver::PrivateServer;
use parent_connection_testkit::crash::{self, Engine, Operation, Options, Scale, Summary};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// Kill the product mid-operation, check what is left, restart, check it finishes.
#[derive(Debug, Parser)]
#[command(name = "crash")]
struct Cli {
    /// Trials per operation.
    #[arg(long, default_value_t = 100)]
    trials: u64,
    /// `sqlite`, or `postgres` (a server given by --postgres-url, or with --private-server
    /// a cluster of the harness's own).
    #[arg(long, default_value = "sqlite", value_parser = ["sqlite", "postgres"])]
    engine: String,
    /// A PostgreSQL server URL whose role may CREATE DATABASE (databases crash_<pid>_… are
    /// created there and dropped).
    #[arg(
        long,
        value_name = "URL",
        env = "TEST_DATABASE_URL",
        hide_env_values = true
    )]
    postgres_url: Option<String>,
    /// With `--engine postgres`: start a private PostgreSQL cluster (initdb into the work
    /// folder, its own port) instead of using --postgres-url, and crash that server itself
    /// in every N-th trial (--server-kill-every).
    #[arg(long)]
    private_server: bool,
    /// With --private-server: every N-th trial crashes the server instead of the process.
    #[arg(long, value_name = "N", default_value_t = 4)]
    server_kill_every: u64,
    /// Operations to run, comma-separated: import, approval, digest, dispatch.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "import,approval,digest,dispatch"
    )]
    operations: Vec<String>,
    /// Seed of the run: trial i of an operation draws its kill point from it.
    #[arg(long, default_value_t = 20_261_205)]
    seed: u64,
    /// Run only trial I of each operation (to reproduce a finding with its run's seed).
    #[arg(long, value_name = "I")]
    only_trial: Option<u64>,
    /// Small data (CI's size) instead of the default.
    #[arg(long)]
    small: bool,
    /// Students of the imported district (default 3,000; 300 with --small).
    #[arg(long, value_name = "N")]
    students: Option<u64>,
    /// Guardians who get a digest, and digests to dispatch (default 2,000; 200 with --small).
    #[arg(long, value_name = "N")]
    guardians: Option<u64>,
    /// Pending requests to approve (default 30; 8 with --small).
    #[arg(long, value_name = "N")]
    requests: Option<u64>,
    /// The product binary (default: parent-connection next to this program).
    #[arg(long, value_name = "FILE")]
    product_bin: Option<PathBuf>,
    /// Work folder (default: a new folder under the system's temporary folder, removed).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
}

fn product(explicit: Option<PathBuf>) -> Result<PathBuf> {
    let path = match explicit {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("no folder")?
            .join("parent-connection"),
    };
    if !path.is_file() {
        bail!(
            "no product binary at {}: `cargo build --release --bin parent-connection`, or --product-bin",
            path.display()
        );
    }
    Ok(path)
}

async fn run(cli: Cli) -> Result<bool> {
    let work = cli.work_dir.clone().unwrap_or_else(crash::default_work_dir);
    let mut operations = Vec::new();
    for name in &cli.operations {
        operations.push(Operation::parse(name).with_context(|| format!("no operation {name}"))?);
    }
    let server = match (cli.engine.as_str(), cli.private_server) {
        ("postgres", true) => Some(Arc::new(PrivateServer::start(&work)?)),
        _ => None,
    };
    let engine = match (cli.engine.as_str(), &server, &cli.postgres_url) {
        ("sqlite", _, _) => Engine::Sqlite,
        (_, Some(server), _) => Engine::Postgres {
            admin_url: server.admin_url(),
        },
        (_, None, Some(url)) => Engine::Postgres {
            admin_url: url.clone(),
        },
        _ => bail!(
            "--engine postgres needs --postgres-url (or TEST_DATABASE_URL) or --private-server"
        ),
    };
    let base = if cli.small {
        Scale::SMALL
    } else {
        Scale::DEFAULT
    };
    let scale = Scale {
        students: cli.students.unwrap_or(base.students),
        guardians: cli.guardians.unwrap_or(base.guardians),
        requests: cli.requests.unwrap_or(base.requests),
    };
    let options = Options {
        product: product(cli.product_bin)?,
        work: work.clone(),
        engine,
        seed: cli.seed,
        scale,
        server,
        server_kill_every: if cli.private_server {
            cli.server_kill_every
        } else {
            0
        },
    };
    let mut rows = Vec::new();
    for operation in operations {
        let started = Instant::now();
        let prepared = crash::prepare(&options, operation).await?;
        eprintln!(
            "{}: one whole run takes {} ms",
            operation.name(),
            prepared.window.as_millis()
        );
        let mut summary = Summary::default();
        let range = match cli.only_trial {
            Some(i) => i..i + 1,
            None => 0..cli.trials,
        };
        for index in range {
            let trial = crash::trial(&options, &prepared, index).await;
            eprintln!(
                "{} #{index} seed {} kill at {} ms{}{}: {} {}",
                operation.name(),
                trial.seed,
                trial.delay.as_millis(),
                if trial.server_killed { " (server)" } else { "" },
                if trial.killed_running {
                    ""
                } else {
                    " (already done)"
                },
                trial.state,
                trial
                    .finding
                    .as_deref()
                    .map_or("ok".to_string(), |f| format!("FINDING: {f}"))
            );
            summary.add(&trial);
        }
        crash::cleanup(&options, &prepared).await?;
        rows.push((operation, prepared.window, summary, started.elapsed()));
    }
    drop(options);
    if cli.work_dir.is_none() {
        crash::remove_work(&work)?;
    }
    println!(
        "| operation | whole run | trials | killed mid-run | server crashed | before | partial | after | max in flight | duplicates | findings | time |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut clean = true;
    for (operation, window, s, took) in &rows {
        println!(
            "| {} | {:.2} s | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} s |",
            operation.name(),
            window.as_secs_f64(),
            s.trials,
            s.killed_running,
            s.server_killed,
            s.before,
            s.partial,
            s.after,
            s.max_in_flight,
            s.duplicates,
            s.findings.len(),
            took.as_secs_f64()
        );
        for finding in &s.findings {
            clean = false;
            println!(
                "\n- {} trial {} (run seed {}): {}",
                operation.name(),
                finding.index,
                cli.seed,
                finding.finding.as_deref().unwrap_or("")
            );
        }
    }
    Ok(clean)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("crash: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(e) => {
            eprintln!("crash: {e:#}");
            ExitCode::FAILURE
        }
    }
}
