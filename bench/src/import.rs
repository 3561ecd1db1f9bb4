//! The import benchmark (`parent-connection-bench import`): it generates a district-sized
//! SDS v2.1 snapshot (`parent_connection_testkit::generate`), then, for each backend (a
//! fresh SQLite file, and PostgreSQL when a server URL is given): migrates a fresh database,
//! creates a tenant, imports the snapshot, re-syncs with a slightly changed snapshot, and
//! measures the engine floor ([`crate::floor`]) on the same rows. Each database phase runs
//! in a child process ([`crate::child`]), so wall time and peak resident memory
//! ([`crate::measure`]) are those of a process doing only that phase. The results are
//! written to `BENCHMARKS.md` ([`crate::report`]).

use crate::child::{self, ChildOutput, ChildPhase, ImportOutcome};
use crate::measure::{self, PhaseCost, PhaseMeter};
use crate::ui::Ui;
use crate::{floor, report, sections, sql};
use anyhow::{Context, Result, bail};
use parent_connection::config::{Config, DatabaseConfig};
use parent_connection_testkit::generate;
use parent_connection_testkit::pg::{self, redact_url};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Options of `import`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportBenchArgs {
    /// Students in the generated district.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub students: u64,
    /// Seed of the generator (same seed, same files).
    #[arg(long, value_name = "S", default_value_t = 20_261_123)]
    pub seed: u64,
    /// Also benchmark PostgreSQL: URL of a server database the user may CREATE DATABASE
    /// from, e.g. postgres://user:pass@127.0.0.1:5432/postgres. A fresh database
    /// bench_import_<pid> is created there and dropped at the end.
    #[arg(
        long,
        value_name = "URL",
        env = "BENCH_POSTGRES_URL",
        hide_env_values = true
    )]
    pub postgres_url: Option<String>,
    /// Folder for the generated files and the SQLite database (default: a new folder under
    /// the system temporary folder). Only the benchmark's own sub-folders are removed.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Markdown file to (re)write with the results.
    #[arg(long, value_name = "FILE", default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
    /// Skip SQLite (only with --postgres-url).
    #[arg(long, requires = "postgres_url")]
    pub skip_sqlite: bool,
    /// Keep the generated files and the SQLite database.
    #[arg(long)]
    pub keep: bool,
}

/// Runs the import benchmark, rewrites the head and import section of `args.out` and prints
/// the summary.
pub async fn run(args: &ImportBenchArgs, config: &Config) -> Result<()> {
    let results = run_import(args, config).await?;
    let text = report::markdown(&results, args);
    sections::write(&args.out, "import", &text)?;
    eprintln!("wrote {}", args.out.display());
    println!("{}", report::summary(&results));
    Ok(())
}

/// One measured phase.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Phase {
    /// Name, e.g. `first import`.
    pub name: String,
    /// Time and memory.
    pub cost: PhaseCost,
    /// Rows the phase wrote (or generated).
    pub rows: u64,
    /// Steps inside the phase (the import's own progress phases), with their durations.
    pub steps: Vec<(String, Duration)>,
}

/// The results for one database backend.
#[derive(Debug, Clone)]
pub struct BackendResults {
    /// `SQLite` or `PostgreSQL`.
    pub name: &'static str,
    /// Server / library version.
    pub version: String,
    /// Where it ran (redacted URL).
    pub location: String,
    /// How the floor loads rows.
    pub floor_method: &'static str,
    /// Setup, first import, re-sync, engine floor.
    pub phases: Vec<Phase>,
    /// Outcome of the first import.
    pub first: ImportOutcome,
    /// Outcome of the re-sync.
    pub resync: ImportOutcome,
    /// True when the re-sync needed `force` (the deletion guard refused it).
    pub resync_forced: bool,
    /// Rows loaded by the floor.
    pub floor_rows: floor::FloorRows,
    /// Size of the database after the re-sync, bytes.
    pub database_bytes: Option<u64>,
}

impl BackendResults {
    /// The phase named `name`.
    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }
}

/// Everything one `import` run measured.
#[derive(Debug, Clone)]
pub struct ImportBenchResults {
    /// When the run started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Git commit of the code.
    pub commit: String,
    /// The machine.
    pub machine: measure::Machine,
    /// Students generated.
    pub students: u64,
    /// Generator seed.
    pub seed: u64,
    /// What the generator wrote.
    pub generated: generate::GenSummary,
    /// What the mutator changed.
    pub mutated: generate::MutateSummary,
    /// Generating and mutating.
    pub data_phases: Vec<Phase>,
    /// Per backend.
    pub backends: Vec<BackendResults>,
    /// Import settings used.
    pub import_config: parent_connection::config::ImportConfig,
    /// Pool size used.
    pub max_connections: u32,
    /// False when peak RSS could not be reset per phase.
    pub per_phase_rss: bool,
    /// Load averages when the run started and ended (other work on the machine).
    pub load: (Option<String>, Option<String>),
}

/// Phase names, shared with the report.
pub mod phases {
    /// Fresh database, migrations, tenant.
    pub const SETUP: &str = "setup (migrate + tenant)";
    /// First import of the generated snapshot.
    pub const FIRST: &str = "first import";
    /// Import of the changed snapshot.
    pub const RESYNC: &str = "re-sync";
    /// Plain bulk load of the same contact and link rows.
    pub const FLOOR: &str = "engine floor";
    /// Writing the first snapshot.
    pub const GENERATE: &str = "generate snapshot";
    /// Writing the re-sync snapshot.
    pub const MUTATE: &str = "write re-sync snapshot";
}

/// Runs the import benchmark and returns the measurements (the caller writes the report).
pub async fn run_import(args: &ImportBenchArgs, config: &Config) -> Result<ImportBenchResults> {
    if args.skip_sqlite && args.postgres_url.is_none() {
        bail!("--skip-sqlite needs --postgres-url");
    }
    let ui = Ui::new();
    let started_at = chrono::Utc::now();
    let per_phase_rss = measure::can_reset_peak();
    let load_before = measure::load_average();
    if !per_phase_rss {
        ui.line(
            "note: cannot reset the peak-RSS mark (/proc/self/clear_refs); peaks are process-wide",
        );
    }
    let work = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => {
            std::env::temp_dir().join(format!("parent-connection-bench-{}", std::process::id()))
        }
    };
    let first_dir = work.join("snapshot-first");
    let resync_dir = work.join("snapshot-resync");
    let sqlite_dir = work.join("sqlite");
    for dir in [&first_dir, &resync_dir, &sqlite_dir] {
        remove_dir(dir)?;
    }
    ui.line(&format!("work folder: {}", work.display()));

    let mut data_phases = Vec::new();
    ui.start(&format!(
        "generating {} students (seed {})",
        args.students, args.seed
    ));
    let meter = PhaseMeter::start();
    let (students, seed, dir) = (args.students, args.seed, first_dir.clone());
    let generated = tokio::task::spawn_blocking(move || generate::generate(&dir, students, seed))
        .await
        .context("the generator stopped")??;
    let cost = meter.stop();
    ui.done(&cost);
    data_phases.push(Phase {
        name: phases::GENERATE.into(),
        cost,
        rows: generated.users
            + generated.roles
            + generated.enrollments
            + generated.links
            + generated.classes
            + generated.schools,
        steps: vec![],
    });

    ui.start("writing the re-sync snapshot (1% of contacts changed, 0.5% of links removed)");
    let meter = PhaseMeter::start();
    let (from, to) = (first_dir.clone(), resync_dir.clone());
    let mutated = tokio::task::spawn_blocking(move || generate::mutate(&from, &to, seed))
        .await
        .context("the mutator stopped")??;
    let cost = meter.stop();
    ui.done(&cost);
    data_phases.push(Phase {
        name: phases::MUTATE.into(),
        cost,
        rows: mutated.contacts_changed + mutated.links_removed,
        steps: vec![],
    });

    let sets = Sets {
        first: first_dir.clone(),
        resync: resync_dir.clone(),
    };
    let mut backends = Vec::new();
    if !args.skip_sqlite {
        std::fs::create_dir_all(&sqlite_dir)
            .with_context(|| format!("cannot create {}", sqlite_dir.display()))?;
        let path = sqlite_dir.join("bench.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let floor_url = format!(
            "sqlite://{}?mode=rwc",
            sqlite_dir.join("floor.db").display()
        );
        let result = run_backend(
            "SQLite",
            &url,
            &floor_url,
            &path.display().to_string(),
            config,
            &sets,
            &ui,
        )
        .await;
        if !args.keep {
            remove_dir(&sqlite_dir)?;
        }
        backends.push(result.context("SQLite benchmark failed")?);
    }
    if let Some(server) = &args.postgres_url {
        let name = format!("bench_import_{}", std::process::id());
        let floor_name = format!("bench_floor_{}", std::process::id());
        let url = pg::create_database(server, &name).await?;
        let floor_url = match pg::create_database(server, &floor_name).await {
            Ok(floor_url) => floor_url,
            Err(e) => {
                pg::drop_database(server, &name).await?;
                return Err(e);
            }
        };
        let result = run_backend(
            "PostgreSQL",
            &url,
            &floor_url,
            &redact_url(&url),
            config,
            &sets,
            &ui,
        )
        .await;
        let dropped = pg::drop_database(server, &name).await;
        let floor_dropped = pg::drop_database(server, &floor_name).await;
        let result = result.context("PostgreSQL benchmark failed")?;
        dropped?;
        floor_dropped?;
        backends.push(result);
    }
    if !args.keep {
        remove_dir(&first_dir)?;
        remove_dir(&resync_dir)?;
    }
    ui.finish();
    Ok(ImportBenchResults {
        started_at,
        commit: measure::git_commit(),
        machine: measure::Machine::detect(),
        students: args.students,
        seed: args.seed,
        generated,
        mutated,
        data_phases,
        backends,
        import_config: config.import.clone(),
        max_connections: config.database.pool_size(),
        per_phase_rss,
        load: (load_before, measure::load_average()),
    })
}

struct Sets {
    first: PathBuf,
    resync: PathBuf,
}

/// Removes `dir` and what it holds; a folder that is not there is fine.
pub fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", dir.display())),
    }
}

async fn run_backend(
    name: &'static str,
    url: &str,
    floor_url: &str,
    location: &str,
    config: &Config,
    sets: &Sets,
    ui: &Ui,
) -> Result<BackendResults> {
    let mut phases = Vec::new();
    ui.start(&format!("[{name}] fresh database, migrations, tenant"));
    let (setup, _) = child_phase(ChildPhase::Setup, url, None, phases::SETUP, ui).await?;
    phases.push(setup);

    ui.start(&format!("[{name}] {}", phases::FIRST));
    let (phase, output) = child_phase(
        ChildPhase::Import,
        url,
        Some(&sets.first),
        phases::FIRST,
        ui,
    )
    .await?;
    let first = output.import.unwrap_or_default();
    if first.status != "applied" {
        bail!(
            "the first import was not applied ({}): {}",
            first.status,
            first.first_error()
        );
    }
    phases.push(phase);

    ui.start(&format!("[{name}] {}", phases::RESYNC));
    let (mut phase, output) = child_phase(
        ChildPhase::Import,
        url,
        Some(&sets.resync),
        phases::RESYNC,
        ui,
    )
    .await?;
    let mut resync = output.import.unwrap_or_default();
    let mut resync_forced = false;
    if resync.status == "refused"
        && resync
            .errors
            .iter()
            .any(|(code, _)| code == "deletion_guard")
    {
        ui.line(&format!(
            "[{name}] the deletion guard refused the re-sync ({}); running it again with force",
            resync.first_error()
        ));
        resync_forced = true;
        let output;
        (phase, output) = child_phase(
            ChildPhase::ImportForced,
            url,
            Some(&sets.resync),
            phases::RESYNC,
            ui,
        )
        .await?;
        resync = output.import.unwrap_or_default();
    }
    if resync.status != "applied" {
        bail!(
            "the re-sync was not applied ({}): {}",
            resync.status,
            resync.first_error()
        );
    }
    phases.push(phase);

    // Version and size, on a short connection of this (parent) process.
    let database = DatabaseConfig {
        url: url.to_string(),
        ..config.database.clone()
    };
    let conn = parent_connection::db::connect(&database)
        .await
        .with_context(|| format!("cannot connect to {location}"))?;
    let version = sql::version(&conn).await;
    let database_bytes = sql::database_bytes(&conn).await;
    let floor_method = floor::method(conn.get_database_backend());
    conn.close().await.context("cannot close the database")?;

    // The floor loads into its own fresh database with the real schema and one tenant
    // (made untimed), so its inserts meet the same indexes and constraints as the import's.
    ui.start(&format!(
        "[{name}] engine floor: fresh database, migrations, tenant (untimed)"
    ));
    child_phase(ChildPhase::Setup, floor_url, None, phases::SETUP, ui).await?;
    ui.start(&format!("[{name}] engine floor: {floor_method}"));
    let (phase, output) = child_phase(
        ChildPhase::Floor,
        floor_url,
        Some(&sets.first),
        phases::FLOOR,
        ui,
    )
    .await?;
    let floor_rows = output.floor.unwrap_or_default();
    phases.push(Phase {
        rows: floor_rows.total(),
        ..phase
    });
    Ok(BackendResults {
        name,
        version,
        location: location.to_string(),
        floor_method,
        phases,
        first,
        resync,
        resync_forced,
        floor_rows,
        database_bytes,
    })
}

/// Runs one phase in a child process and turns its output into a [`Phase`].
async fn child_phase(
    which: ChildPhase,
    url: &str,
    dir: Option<&Path>,
    name: &str,
    ui: &Ui,
) -> Result<(Phase, ChildOutput)> {
    let output = child::spawn(which, url, dir)
        .await
        .with_context(|| format!("{name} failed"))?;
    let cost = PhaseCost {
        wall: Duration::from_millis(output.wall_ms),
        peak_rss_kib: output.peak_rss_kib,
        start_rss_kib: output.start_rss_kib,
        peak_is_per_phase: true,
    };
    ui.done(&cost);
    let steps: Vec<(String, Duration)> = output
        .steps
        .iter()
        .map(|(step, ms)| (step.clone(), Duration::from_millis(*ms)))
        .collect();
    for (step, took) in &steps {
        ui.line(&format!("      {step}: {:.1} s", took.as_secs_f64()));
    }
    let phase = Phase {
        name: name.into(),
        cost,
        rows: output.import.as_ref().map_or(0, |i| i.rows_written),
        steps,
    };
    Ok((phase, output))
}
