//! Each database phase of the benchmark runs in its own child process
//! (`parent-connection-bench import-phase`, hidden), so its peak RSS is the high-water mark
//! of a fresh process doing only that phase — as a real `parent-connection import` run is —
//! instead of carrying the allocator's and the connection pool's memory over from earlier
//! phases. The child prints one JSON line ([`ChildOutput`]) on standard output.

use crate::floor::{self, FloorRows};
use crate::measure::PhaseMeter;
use crate::ui::{Steps, Ui};
use anyhow::{Context, Result, bail};
use parent_connection::config::{Config, DatabaseConfig};
use parent_connection::domain::{Region, TenantSlug};
use parent_connection::sync::report::{Counts, ImportReport};
use parent_connection::sync::{self, Format, ImportRequest};
use parent_connection::{db, tenants};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Environment variable that carries the database URL to the child (kept off the command
/// line, where `ps` would show the password).
pub const DATABASE_URL_ENV: &str = "BENCH_PHASE_DATABASE_URL";

/// The phase a child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChildPhase {
    /// Migrate a fresh database and create the tenant `bench`.
    Setup,
    /// Import the snapshot in `--dir` for tenant `bench`.
    Import,
    /// Same, with `force` (past the deletion guard).
    ImportForced,
    /// The engine floor on the snapshot in `--dir`, into a database the `Setup` phase made.
    Floor,
}

/// Options of the hidden `import-phase`.
#[derive(Debug, Clone, clap::Args)]
pub struct PhaseArgs {
    /// Phase to run.
    #[arg(long, value_enum)]
    pub phase: ChildPhase,
    /// Snapshot folder (import and floor).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Database URL.
    #[arg(long, env = DATABASE_URL_ENV, hide_env_values = true)]
    pub database_url: String,
}

/// Counts of one entity, as the child reports them.
pub type EntityRow = (String, Counts6);

/// [`Counts`] in a form that crosses the process boundary.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Counts6 {
    /// New rows.
    pub created: u64,
    /// Changed rows.
    pub updated: u64,
    /// Identical rows.
    pub unchanged: u64,
    /// Inactive rows present again.
    pub reactivated: u64,
    /// Rows now inactive.
    pub deactivated: u64,
    /// Refused input rows.
    pub rejected: u64,
}

impl From<&Counts> for Counts6 {
    fn from(c: &Counts) -> Self {
        Self {
            created: c.created,
            updated: c.updated,
            unchanged: c.unchanged,
            reactivated: c.reactivated,
            deactivated: c.deactivated,
            rejected: c.rejected,
        }
    }
}

/// What the benchmark keeps of an import report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportOutcome {
    /// `applied`, `refused`, …
    pub status: String,
    /// Rows written.
    pub rows_written: u64,
    /// Warnings found.
    pub warning_count: u64,
    /// Counts per entity, in the report's order.
    pub entities: Vec<EntityRow>,
    /// `(code, text)` of each error.
    pub errors: Vec<(String, String)>,
}

impl ImportOutcome {
    fn from_report(report: &ImportReport) -> Self {
        Self {
            status: report.status.as_str().to_string(),
            rows_written: report.rows_written,
            warning_count: report.warning_count,
            entities: report
                .entities
                .named()
                .iter()
                .map(|(name, counts)| (name.to_string(), Counts6::from(*counts)))
                .collect(),
            errors: report
                .errors
                .iter()
                .map(|e| (e.code.to_string(), e.to_string()))
                .collect(),
        }
    }

    /// The counts of `entity` (zero when absent).
    pub fn entity(&self, entity: &str) -> Counts6 {
        self.entities
            .iter()
            .find(|(name, _)| name == entity)
            .map(|(_, c)| *c)
            .unwrap_or_default()
    }

    /// The first error as text.
    pub fn first_error(&self) -> String {
        self.errors
            .first()
            .map_or_else(|| "no error reported".into(), |(_, text)| text.clone())
    }
}

/// The child's one line of output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildOutput {
    /// Wall time of the phase, milliseconds.
    pub wall_ms: u64,
    /// Peak RSS of the child process, KiB.
    pub peak_rss_kib: Option<u64>,
    /// RSS when the phase began (after start-up), KiB.
    pub start_rss_kib: Option<u64>,
    /// Steps inside an import, milliseconds.
    pub steps: Vec<(String, u64)>,
    /// The import's outcome.
    pub import: Option<ImportOutcome>,
    /// Rows the floor loaded.
    pub floor: Option<FloorRows>,
}

/// Runs one phase in this process and prints its [`ChildOutput`].
pub async fn run_phase(args: PhaseArgs, config: &Config) -> Result<()> {
    let database = DatabaseConfig {
        url: args.database_url.clone(),
        ..config.database.clone()
    };
    let dir = || args.dir.clone().context("--dir is required for this phase");
    let ui = Ui::new();
    let meter = PhaseMeter::start();
    let conn = db::connect(&database)
        .await
        .context("cannot connect to the database")?;
    let mut output = ChildOutput {
        wall_ms: 0,
        peak_rss_kib: None,
        start_rss_kib: None,
        steps: vec![],
        import: None,
        floor: None,
    };
    match args.phase {
        ChildPhase::Setup => {
            db::migrate(&conn).await.context("migrations failed")?;
            let slug = TenantSlug::parse("bench").map_err(|e| anyhow::anyhow!("{e}"))?;
            tenants::create(
                &conn,
                &slug,
                "Benchmark district",
                Region::default(),
                config.tenant_defaults.deletion_guard_percent,
                "bench",
            )
            .await
            .context("cannot create the tenant")?;
        }
        ChildPhase::Import | ChildPhase::ImportForced => {
            let request = ImportRequest {
                tenant: "bench".into(),
                format: Format::SdsV21,
                dir: dir()?,
                source: None,
                dry_run: false,
                force: args.phase == ChildPhase::ImportForced,
                actor: "bench".into(),
                privacy: parent_connection::privacy::PrivacyKey::from_config(config)
                    .context("no privacy key")?,
            };
            let steps = Arc::new(Steps::new(ui.bar.clone()));
            let report = sync::import(&conn, &config.import, &request, steps.clone())
                .await
                .context("the import failed")?;
            output.steps = steps
                .durations()
                .into_iter()
                .map(|(name, took)| (name, took.as_millis() as u64))
                .collect();
            output.import = Some(ImportOutcome::from_report(&report));
        }
        ChildPhase::Floor => {
            output.floor = Some(floor::run(&conn, &dir()?).await?);
        }
    }
    let cost = meter.stop();
    ui.finish();
    conn.close().await.context("cannot close the database")?;
    output.wall_ms = cost.wall.as_millis() as u64;
    // The process's whole high-water mark: this child did nothing but this phase.
    output.peak_rss_kib = crate::measure::peak_rss_kib();
    output.start_rss_kib = cost.start_rss_kib;
    println!("{}", serde_json::to_string(&output)?);
    Ok(())
}

/// Runs `phase` in a child process of this executable and returns its output.
pub async fn spawn(
    phase: ChildPhase,
    database_url: &str,
    dir: Option<&Path>,
) -> Result<ChildOutput> {
    let exe = std::env::current_exe().context("cannot find this program's executable")?;
    let mut command = std::process::Command::new(exe);
    command
        .args(["import-phase", "--phase"])
        .arg(match phase {
            ChildPhase::Setup => "setup",
            ChildPhase::Import => "import",
            ChildPhase::ImportForced => "import-forced",
            ChildPhase::Floor => "floor",
        })
        .env(DATABASE_URL_ENV, database_url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    if let Some(dir) = dir {
        command.arg("--dir").arg(dir);
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .context("the child process runner stopped")?
        .context("cannot start the child process")?;
    if !output.status.success() {
        bail!(
            "the {phase:?} phase failed ({}); its error is above",
            output.status
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("the child process printed no result")?;
    serde_json::from_str(line).context("cannot read the child process's result")
}
