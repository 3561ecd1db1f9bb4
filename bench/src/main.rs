//! `parent-connection-bench`: the benchmarks of Parent Connection, a tool beside the product
//! (the shipped `parent-connection` does not contain it). They run as commands, not as timed
//! tests: at full scale they need minutes, gigabytes of disk and a quiet machine.
//!
//! - `import` ([`import`]): the SDS import and re-sync at district scale against the
//!   engine floor; each database phase in a child process of this program ([`child`]).
//! - `dispatch` ([`dispatch`]): outbox delivery to an in-process SMTP sink, with faults.
//! - `digest` ([`digest`]): a weekly digest run and its sends, as child processes of the
//!   product binary ([`product`]).
//! - `oneroster` ([`oneroster`]): a full and a delta OneRoster pull of the district from
//!   the testkit's provider, as child processes of the product, against the CSV import.
//! - `api` ([`api`]): the product's `serve` as a child process under the load of
//!   [`load`], at district scale.
//!
//! Each rewrites its own section of `BENCHMARKS.md` ([`sections`]). The library's public API
//! is used where a phase runs in-process (connect, migrate, create a tenant, import, the
//! mailer and the dispatcher, token minting); the data generator, PostgreSQL databases and
//! the SMTP sink come from `parent-connection-testkit`, which the tests share.

mod api;
mod api_report;
mod child;
mod digest;
mod dispatch;
mod floor;
mod import;
mod load;
mod measure;
mod oneroster;
mod product;
mod report;
mod sections;
mod sql;
mod ui;

use clap::{Parser, Subcommand};
use parent_connection::config::{self, Config};
use product::ProductBin;
use std::path::PathBuf;
use std::process::ExitCode;

/// Benchmarks of Parent Connection (minutes at full scale; use a release build).
///
/// Configuration is the product's: config/default.toml (compiled in), an optional file named
/// by PARENT_CONNECTION_CONFIG, and environment variables PARENT_CONNECTION__<SECTION>__<KEY>;
/// its import, database pool, mail and outbox settings are the ones benchmarked.
#[derive(Debug, Parser)]
#[command(name = "parent-connection-bench", version, propagate_version = true)]
struct Cli {
    /// The product binary that `api` and `digest` run as child processes (default: the
    /// parent-connection next to this program).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "PC_BIN",
        hide_env_values = true
    )]
    product_bin: Option<PathBuf>,
    /// Benchmark to run.
    #[command(subcommand)]
    command: BenchCommand,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Benchmark the SDS import at district scale and write BENCHMARKS.md.
    ///
    /// Generates a seeded synthetic SDS v2.1 snapshot (N students, ~2·N contacts, ~2.3·N
    /// links, rows in random order) and a re-sync snapshot from it (1% of contacts changed,
    /// 0.5% of links removed). Then, for SQLite (a fresh file in the work folder) and for
    /// PostgreSQL (a fresh database created on the server given by --postgres-url and
    /// dropped afterwards): migrate, create a tenant, first import, re-sync, and the engine
    /// floor (every row the first import writes, loaded into a fresh database with the real
    /// schema by prepared inserts, or COPY on PostgreSQL). Wall time and peak RSS are recorded per phase. Use a release build: at
    /// 1,000,000 students the files take ~0.5 GB and the SQLite database ~2 GB of disk.
    Import(import::ImportBenchArgs),
    /// Benchmark outbox delivery to a local SMTP sink, clean and with injected faults, and
    /// write the dispatch section of BENCHMARKS.md.
    ///
    /// Measures lettre's own transport on one connection, the project's mailer alone (the
    /// transport ceiling), and the dispatcher draining N queued invitations on SQLite (and
    /// PostgreSQL with --postgres-url), then the same with 5% transient 451 answers and 1%
    /// of messages dropped after their data, checking that none is lost.
    Dispatch(dispatch::DispatchBenchArgs),
    /// Benchmark a weekly digest run at district scale (default 1,000,000 guardians) and
    /// write the digest section of BENCHMARKS.md: compose and enqueue time, peak RSS, and
    /// the growth of the delivery and outbox tables. The run and the sends are the real
    /// `parent-connection digest run` and `dispatch --once`, each a child process.
    Digest(digest::DigestBenchArgs),
    /// Benchmark the HTTP API under load at district scale and write the api section of
    /// BENCHMARKS.md.
    ///
    /// Builds the district of `import` (or reuses one kept with --sqlite-file /
    /// --postgres-database), starts the real service (`parent-connection serve`) as a child process on a
    /// loopback port, and drives it from this process over keep-alive HTTP/1.1 connections
    /// with thousands of distinct teacher tokens, apps and admins: saturation of GET /healthz
    /// and of teacher contact reads (closed loop); teacher contact reads (default 5,000/s)
    /// and a school-day mix with 10% writes (default 2,000/s) at a fixed rate, open loop,
    /// latency from each request's scheduled time (coordinated omission corrected); and a
    /// soak at the mix rate (default 600 s) sampling the server's resident memory. Reports
    /// p50/p90/p99/p99.9/max, errors by status and the server's peak RSS per scenario. Use a
    /// release build and a quiet machine: the load generator shares the CPUs with the server.
    Api(api::ApiBenchArgs),
    /// Benchmark OneRoster pulls at district scale and write the oneroster section of
    /// BENCHMARKS.md.
    ///
    /// Serves the district of `import` (same seed) from the testkit's OneRoster 1.1
    /// provider in this process, page by page. Per engine (a fresh SQLite file; PostgreSQL
    /// with --postgres-url, fresh databases dropped afterwards): the CSV import of the same
    /// district, a full pull, and a delta pull after the provider changed 1% of the contacts
    /// and dropped 0.5% of the links; each pull is `parent-connection sync oneroster` in a
    /// child process (wall time, peak RSS). The provider's serving time alone is measured
    /// once. Targets: peak RSS <= 300 MB; full pull <= 1.5 x (CSV import + serving time).
    Oneroster(oneroster::OneRosterBenchArgs),
    /// One database phase of `import`, run in a child process (internal).
    #[command(hide = true)]
    ImportPhase(child::PhaseArgs),
}

/// Runs a benchmark with the loaded configuration.
async fn run(cli: Cli, config: &Config) -> anyhow::Result<()> {
    let product = || ProductBin::locate(cli.product_bin.as_deref());
    match cli.command {
        BenchCommand::Import(args) => import::run(&args, config).await,
        BenchCommand::ImportPhase(args) => child::run_phase(args, config).await,
        BenchCommand::Dispatch(args) => dispatch::run(&args, config).await,
        BenchCommand::Digest(args) => digest::run(&args, config, &product()?).await,
        BenchCommand::Api(args) => api::run(&args, config, &product()?).await,
        BenchCommand::Oneroster(args) => oneroster::run(&args, &product()?).await,
    }
}

/// Logs on standard error, `warn` and above unless `RUST_LOG` says otherwise (as the
/// product's commands other than `serve`).
fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if config.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[global_allocator]
static ALLOCATOR: parent_connection::Allocator = parent_connection::Allocator;

fn main() -> ExitCode {
    parent_connection::configure_allocator();
    let cli = Cli::parse();
    let loaded = match Config::load_from(config::process_env()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("parent-connection-bench: {e}");
            return ExitCode::from(2);
        }
    };
    // The mailer's TLS (STARTTLS to a real server) needs a process-wide crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_logging(&loaded.config);
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("parent-connection-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, &loaded.config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole context chain, on one line.
            let message = format!("{e:#}");
            let line = message.lines().next().unwrap_or("failed");
            eprintln!("parent-connection-bench: {line}");
            ExitCode::FAILURE
        }
    }
}
