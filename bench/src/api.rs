//! `parent-connection-bench api`: the HTTP API under load, at district scale.
//!
//! For each engine (a SQLite file, and PostgreSQL with `--postgres-url`): build the district
//! of `import` (the same generator and the real import, in child processes) or reuse
//! a kept database; read a sample of teachers, their classes, their students and the
//! students' guardians from it; mint a development token for each teacher, app and admin;
//! start the real service (`parent-connection serve`, the product binary) as a child
//! process; and drive it from this process with the load generator of [`crate::load`]: saturation of `GET /healthz`
//! and of teacher contact reads (closed loop), teacher contact reads and the school-day mix
//! at fixed rates (open loop, latency from the scheduled send), and a soak at the mix rate
//! during which the server's resident memory is sampled. The results become the `api`
//! section of `BENCHMARKS.md` ([`crate::api_report`]).

use crate::api_report::{self, ApiBenchResults, EngineResults, ScenarioResult, SoakResult};
use crate::child::{self, ChildPhase};
use crate::import::remove_dir;
use crate::load::{self, Live, Pace, Prepared, RunOptions, Workload};
use crate::measure::{self, kib_line};
use crate::product::ProductBin;
use crate::report::mib;
use crate::sql;
use crate::ui::Ui;
use anyhow::{Context, Result, bail};
use hyper::Method;
use hyper::body::Bytes;
use hyper::header::HeaderValue;
use parent_connection::auth::mint::{self, SigningKey, Subject};
use parent_connection::auth::{Role, Scope};
use parent_connection::config::{AuthConfig, Config, DatabaseConfig};
use parent_connection::db;
use parent_connection_testkit::generate;
use parent_connection_testkit::pg::{self, redact_url};
use parent_connection_testkit::rng::SplitMix64;
use sea_orm::{DatabaseConnection, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Options of `api`.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiBenchArgs {
    /// Students in the generated district (the generator of `import`).
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub students: u64,
    /// Seed of the generator and of the request sequence.
    #[arg(long, value_name = "S", default_value_t = 20_261_123)]
    pub seed: u64,
    /// Also benchmark PostgreSQL: URL of a server database the user may CREATE DATABASE
    /// from, e.g. postgres://user:pass@127.0.0.1:5432/postgres. A fresh database
    /// bench_api_<pid> is created there and dropped at the end (see --postgres-database).
    #[arg(
        long,
        value_name = "URL",
        env = "BENCH_POSTGRES_URL",
        hide_env_values = true
    )]
    pub postgres_url: Option<String>,
    /// Skip SQLite (only with --postgres-url).
    #[arg(long, requires = "postgres_url")]
    pub skip_sqlite: bool,
    /// Use and keep this SQLite database: built there (generate + import) when the file
    /// does not exist, reused as it is when it does (it must hold the tenant `bench` with
    /// --students students). Saves the import when running the benchmark again.
    #[arg(long, value_name = "FILE")]
    pub sqlite_file: Option<PathBuf>,
    /// Use and keep this database on the --postgres-url server instead of a fresh one:
    /// built when it does not exist, reused when it does (as --sqlite-file).
    #[arg(long, value_name = "NAME", requires = "postgres_url")]
    pub postgres_database: Option<String>,
    /// Folder for the generated snapshot, the SQLite database (without --sqlite-file), the
    /// server's log and mail folder (default: a new folder under the system temporary
    /// folder, removed at the end unless --keep).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Keep the work folder.
    #[arg(long)]
    pub keep: bool,
    /// Teachers who send requests (sampled from the district; each has its own token and
    /// reads only students of its own classes).
    #[arg(long, value_name = "N", default_value_t = 2_000)]
    pub teachers: usize,
    /// Apps (app-only tokens with EduRoster.Read.All) sending the Graph reads of the mix.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub apps: usize,
    /// Admins (global-admin tokens) listing contact requests in the mix.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub admins: usize,
    /// Keep-alive HTTP/1.1 connections of the load generator (each carries one request at
    /// a time; open-loop requests due while all are busy wait, and that wait counts).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub connections: usize,
    /// Rate of the teacher contact-read scenario, requests per second.
    #[arg(long, value_name = "PER_SECOND", default_value_t = 5_000.0)]
    pub read_rate: f64,
    /// Rate of the school-day mix and of the soak, requests per second.
    #[arg(long, value_name = "PER_SECOND", default_value_t = 2_000.0)]
    pub mix_rate: f64,
    /// Seconds each fixed-rate scenario (teacher reads, mix) runs.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub duration: u64,
    /// Seconds each saturation run (closed loop: /healthz, teacher reads) runs.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    pub saturation_seconds: u64,
    /// Seconds of warm-up (the mix at half its rate, not reported) after the server starts.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub warmup_seconds: u64,
    /// Seconds of the soak at the mix rate (0: no soak). The server's peak RSS is taken
    /// per minute; the first and the last minute are compared.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub soak_seconds: u64,
    /// Markdown file whose `api` section is (re)written.
    #[arg(long, value_name = "FILE", default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
}

/// The privacy key (`privacy.hash_key`) of the benchmark's servers: fixed, so that a kept
/// database keeps matching its erasure hashes from one run to the next.
const BENCH_PRIVACY_KEY: &str = "62656e6368206b6579206f6620746865206b65796564206861736865732e2e2e";

/// Settings the benchmark gives the serve child through its environment, and why: the one
/// place they are set (the report lists them). Everything else is the configuration this
/// command was started with (`config/default.toml` and the environment).
pub const SERVE_SETTINGS: &[(&str, &str, &str)] = &[
    (
        "PARENT_CONNECTION__API__CLIENT_REQUESTS_PER_SECOND",
        "1000000",
        "all the load comes from one loopback address, where a district's users come from thousands: the per-address limit is raised out of the way",
    ),
    (
        "PARENT_CONNECTION__API__CLIENT_BURST",
        "1000000",
        "the same, for the per-address burst",
    ),
    (
        "PARENT_CONNECTION__LOG__LEVEL",
        "warn",
        "the request trace layer logs every response at `info`; at thousands of requests a second that is a cost of its own (RUST_LOG is removed too)",
    ),
    (
        "PARENT_CONNECTION__OUTBOX__DISPATCH_IN_SERVE",
        "false",
        "the API alone is measured: invitations queued by chat starts stay queued (`bench dispatch` measures delivery)",
    ),
    (
        "PARENT_CONNECTION__DIGEST__SCHEDULE_IN_SERVE",
        "false",
        "no weekly digest run starts during the benchmark",
    ),
];

/// A request kind: what it is, how often it comes in the mix (per mille) and the statuses
/// that count as success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `GET /api/v1/students/{id}/contacts` by a teacher of the student.
    Contacts,
    /// `GET /api/v1/classes` by a teacher.
    Classes,
    /// `GET /api/v1/classes/{id}/students` by the class's teacher.
    ClassStudents,
    /// `GET /education/users/{id}?$select=relatedContacts` by an app.
    Graph,
    /// `GET /api/v1/contact-requests?status=pending` by an admin.
    AdminRequests,
    /// `POST /api/v1/students/{id}/contact-requests` (add a guardian) by a teacher.
    ContactRequest,
    /// `POST /api/v1/chats` by a teacher of the student, with one of its guardians.
    ChatStart,
    /// `POST /api/v1/classes/{id}/assignments` (an upsert by `externalId`) by the teacher.
    Assignment,
    /// `GET /healthz`, no token.
    Health,
}

impl Kind {
    /// Every kind, in the order of their indexes.
    pub const ALL: [Kind; 9] = [
        Kind::Contacts,
        Kind::Classes,
        Kind::ClassStudents,
        Kind::Graph,
        Kind::AdminRequests,
        Kind::ContactRequest,
        Kind::ChatStart,
        Kind::Assignment,
        Kind::Health,
    ];

    /// The kind's index in a [`Workload`].
    pub fn index(self) -> u8 {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0) as u8
    }

    /// The kind with `index` (the tests check the indexes round-trip).
    #[cfg(test)]
    pub fn from_index(index: u8) -> Option<Self> {
        Self::ALL.get(usize::from(index)).copied()
    }

    /// Route, as the report names it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Contacts => "teacher: GET /api/v1/students/{id}/contacts",
            Kind::Classes => "teacher: GET /api/v1/classes",
            Kind::ClassStudents => "teacher: GET /api/v1/classes/{id}/students",
            Kind::Graph => "app: GET /education/users/{id}?$select=relatedContacts",
            Kind::AdminRequests => "admin: GET /api/v1/contact-requests?status=pending",
            Kind::ContactRequest => "teacher: POST /api/v1/students/{id}/contact-requests",
            Kind::ChatStart => "teacher: POST /api/v1/chats",
            Kind::Assignment => "teacher: POST /api/v1/classes/{id}/assignments",
            Kind::Health => "GET /healthz",
        }
    }

    /// Share of the school-day mix, per mille (writes: 100 ‰).
    pub fn mix_per_mille(self) -> u64 {
        match self {
            Kind::Contacts => 300,
            Kind::Classes => 150,
            Kind::ClassStudents => 200,
            Kind::Graph => 200,
            Kind::AdminRequests => 50,
            Kind::ContactRequest => 34,
            Kind::ChatStart => 33,
            Kind::Assignment => 33,
            Kind::Health => 0,
        }
    }

    /// Statuses that are success for this kind; any other is an error of the run.
    pub fn expected(self) -> &'static [u16] {
        match self {
            Kind::ContactRequest => &[201],
            // A second start of the same teacher, student and guardians re-enters the chat.
            Kind::ChatStart | Kind::Assignment => &[201, 200],
            _ => &[200],
        }
    }

    /// True for the writes of the mix (the tests check they are 10% of it).
    #[cfg(test)]
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Kind::ContactRequest | Kind::ChatStart | Kind::Assignment
        )
    }
}

/// A student of a sampled class, with its active parents and guardians (contact ids).
#[derive(Debug, Clone)]
pub struct Student {
    /// SIS source id.
    pub source_id: String,
    /// Contact ids of its active parents and guardians.
    pub guardians: Vec<i64>,
}

/// A class of a sampled teacher.
#[derive(Debug, Clone)]
pub struct Class {
    /// SIS source id.
    pub source_id: String,
    /// Its active students.
    pub students: Vec<Student>,
}

/// A sampled teacher.
#[derive(Debug, Clone)]
pub struct Teacher {
    /// SIS source id (the token's subject).
    pub source_id: String,
    /// Classes the teacher teaches (each with at least one student).
    pub classes: Vec<Class>,
}

/// The callers of a run, read from the database.
#[derive(Debug, Clone, Default)]
pub struct Roster {
    /// Sampled teachers.
    pub teachers: Vec<Teacher>,
    /// Active teachers in the tenant (the sample's population).
    pub teachers_in_tenant: usize,
}

impl Roster {
    /// Classes of the sample.
    pub fn classes(&self) -> usize {
        self.teachers.iter().map(|t| t.classes.len()).sum()
    }

    /// Students of the sample.
    pub fn students(&self) -> usize {
        self.teachers
            .iter()
            .flat_map(|t| &t.classes)
            .map(|c| c.students.len())
            .sum()
    }
}

/// Runs the benchmark and rewrites the `api` section of `args.out`.
pub async fn run(args: &ApiBenchArgs, config: &Config, product: &ProductBin) -> Result<()> {
    if args.skip_sqlite && args.postgres_url.is_none() {
        bail!("--skip-sqlite needs --postgres-url");
    }
    if args.teachers == 0 || args.apps == 0 || args.admins == 0 || args.connections == 0 {
        bail!("--teachers, --apps, --admins and --connections must be at least 1");
    }
    if !(args.read_rate > 0.0 && args.mix_rate > 0.0) {
        bail!("--read-rate and --mix-rate must be positive");
    }
    let ui = Ui::new();
    let started_at = chrono::Utc::now();
    let load_before = measure::load_average();
    let work = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!(
            "parent-connection-bench-api-{}",
            std::process::id()
        )),
    };
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    ui.line(&format!("work folder: {}", work.display()));
    let mut snapshot = Snapshot {
        dir: work.join("snapshot"),
        made: false,
        students: args.students,
        seed: args.seed,
    };
    let mut engines = Vec::new();
    let result = async {
        if !args.skip_sqlite {
            let (file, kept) = match &args.sqlite_file {
                Some(file) => (file.clone(), true),
                None => (work.join("api.db"), false),
            };
            let url = format!("sqlite://{}?mode=rwc", file.display());
            let engine = run_engine(
                product,
                "SQLite",
                &url,
                &file.display().to_string(),
                kept,
                args,
                config,
                &work,
                &mut snapshot,
                &ui,
            )
            .await
            .context("SQLite benchmark failed")?;
            engines.push(engine);
        }
        if let Some(server) = &args.postgres_url {
            let (name, kept) = match &args.postgres_database {
                Some(name) => (name.clone(), true),
                None => (format!("bench_api_{}", std::process::id()), false),
            };
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                bail!("--postgres-database takes letters, digits and '_' only");
            }
            let url = pg::with_database(server, &name)?;
            if !pg::database_exists(server, &name).await? {
                pg::create_database(server, &name).await?;
            }
            let result = run_engine(
                product,
                "PostgreSQL",
                &url,
                &redact_url(&url),
                kept,
                args,
                config,
                &work,
                &mut snapshot,
                &ui,
            )
            .await;
            if !kept && let Err(e) = pg::drop_database(server, &name).await {
                ui.line(&format!(
                    "note: could not drop the benchmark database {name} ({e:#}); drop it by hand"
                ));
            }
            engines.push(result.context("PostgreSQL benchmark failed")?);
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    ui.finish();
    if !args.keep {
        if args.work_dir.is_none() {
            let _ = remove_dir(&work);
        } else {
            // Only what this command put in a folder the user named.
            let _ = remove_dir(&snapshot.dir);
            for engine in ["sqlite", "postgresql"] {
                let _ = remove_dir(&work.join(format!("serve-{engine}")));
            }
            if args.sqlite_file.is_none() {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(work.join(format!("api.db{suffix}")));
                }
            }
        }
    }
    result?;
    let results = ApiBenchResults {
        started_at,
        commit: measure::git_commit(),
        machine: measure::Machine::detect(),
        students: args.students,
        seed: args.seed,
        args: args.clone(),
        api: config.api.clone(),
        max_connections: config.database.pool_size(),
        load: (load_before, measure::load_average()),
        engines,
    };
    let text = api_report::markdown(&results);
    crate::sections::write(&args.out, "api", &text)?;
    eprintln!("wrote {}", args.out.display());
    println!("{}", api_report::summary(&results));
    Ok(())
}

/// The generated snapshot, made on first need and shared by the engines.
struct Snapshot {
    dir: PathBuf,
    made: bool,
    students: u64,
    seed: u64,
}

impl Snapshot {
    async fn ensure(&mut self, ui: &Ui) -> Result<&Path> {
        if !self.made {
            remove_dir(&self.dir)?;
            ui.start(&format!(
                "generating {} students (seed {})",
                self.students, self.seed
            ));
            let meter = measure::PhaseMeter::start();
            let (dir, students, seed) = (self.dir.clone(), self.students, self.seed);
            tokio::task::spawn_blocking(move || generate::generate(&dir, students, seed))
                .await
                .context("the generator stopped")??;
            ui.done(&meter.stop());
            self.made = true;
        }
        Ok(&self.dir)
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_engine(
    product: &ProductBin,
    name: &'static str,
    url: &str,
    location: &str,
    kept: bool,
    args: &ApiBenchArgs,
    config: &Config,
    work: &Path,
    snapshot: &mut Snapshot,
    ui: &Ui,
) -> Result<EngineResults> {
    let database = DatabaseConfig {
        url: url.to_string(),
        ..config.database.clone()
    };
    // 1. The district: reuse a kept one, or build it with the import benchmark's phases.
    let existing = {
        let conn = db::connect(&database)
            .await
            .with_context(|| format!("cannot connect to {location}"))?;
        let students = existing_students(&conn).await;
        conn.close().await.ok();
        students
    };
    let (reused, import_seconds) = match existing {
        Some(n) if n == args.students => {
            ui.line(&format!(
                "[{name}] reusing {location}: {n} students (rows written by earlier runs stay)"
            ));
            (true, None)
        }
        Some(n) => bail!(
            "{location} holds a tenant 'bench' with {n} students, not {}: pass --students {n}, or remove it",
            args.students
        ),
        None => {
            let dir = snapshot.ensure(ui).await?.to_path_buf();
            ui.start(&format!("[{name}] fresh database, migrations, tenant"));
            let setup = child::spawn(ChildPhase::Setup, url, None).await?;
            ui.line(&format!("    done in {:.1} s", setup.wall_ms as f64 / 1e3));
            ui.start(&format!("[{name}] importing the district"));
            let output = child::spawn(ChildPhase::Import, url, Some(&dir)).await?;
            let outcome = output.import.unwrap_or_default();
            if outcome.status != "applied" {
                bail!(
                    "the import was not applied ({}): {}",
                    outcome.status,
                    outcome.first_error()
                );
            }
            ui.line(&format!("    done in {:.1} s", output.wall_ms as f64 / 1e3));
            (false, Some(output.wall_ms as f64 / 1e3))
        }
    };

    // 2. Who calls: teachers, their classes and students, the students' guardians.
    ui.start(&format!("[{name}] reading {} teachers", args.teachers));
    let conn = db::connect(&database)
        .await
        .with_context(|| format!("cannot connect to {location}"))?;
    let roster = read_roster(&conn, args.teachers, args.seed).await?;
    let version = sql::version(&conn).await;
    let database_bytes = sql::database_bytes(&conn).await;
    conn.close().await.ok();
    if roster.teachers.is_empty() {
        bail!("the database has no active teacher with students");
    }
    ui.line(&format!(
        "    {} teachers (of {}), {} classes, {} students",
        roster.teachers.len(),
        roster.teachers_in_tenant,
        roster.classes(),
        roster.students()
    ));

    // 3. Tokens, signed with a secret made for this run and given to the server.
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let tokens = Tokens::mint(&config.auth, &secret, &roster, args.apps, args.admins)?;

    // 4. The server.
    let log_dir = work.join(format!("serve-{}", name.to_ascii_lowercase()));
    std::fs::create_dir_all(&log_dir)?;
    ui.start(&format!("[{name}] starting parent-connection serve"));
    let mut server = Server::start(product, url, &secret, &log_dir).await?;
    ui.line(&format!(
        "    listening on {} (pid {})",
        server.address, server.pid
    ));

    // 5. The scenarios.
    let mut rng = SplitMix64::new(args.seed ^ 0xA5A5_5A5A);
    let tag = format!("{:x}", std::process::id());
    let mut writes = 0u64;
    let scenarios = async {
        let mut scenarios = Vec::new();
        if args.warmup_seconds > 0 {
            let rate = args.mix_rate / 2.0;
            let n = (rate * args.warmup_seconds as f64) as usize;
            let workload = mix(&roster, &tokens, n, &mut rng, &tag, &mut writes);
            scenario(
                &server,
                ui,
                &format!("[{name}] warm-up: the mix at {rate:.0}/s"),
                workload,
                open(args, rate, Duration::from_secs(60)),
                None,
            )
            .await;
        }
        let saturation = Duration::from_secs(args.saturation_seconds.max(1));
        let health = health_workload();
        scenarios.push(
            scenario(
                &server,
                ui,
                &format!("[{name}] {}", api_report::HEALTH_SATURATION),
                health,
                closed(args, saturation),
                Some(api_report::HEALTH_SATURATION),
            )
            .await,
        );
        let reads = teacher_reads(&roster, &tokens, 200_000, &mut rng);
        scenarios.push(
            scenario(
                &server,
                ui,
                &format!("[{name}] {}", api_report::READ_SATURATION),
                reads,
                closed(args, saturation),
                Some(api_report::READ_SATURATION),
            )
            .await,
        );
        let duration = Duration::from_secs(args.duration.max(1));
        let n = (args.read_rate * duration.as_secs_f64()) as usize;
        let reads = teacher_reads(&roster, &tokens, n, &mut rng);
        scenarios.push(
            scenario(
                &server,
                ui,
                &format!("[{name}] {} at {:.0}/s", api_report::READS, args.read_rate),
                reads,
                open(args, args.read_rate, duration),
                Some(api_report::READS),
            )
            .await,
        );
        let n = (args.mix_rate * duration.as_secs_f64()) as usize;
        let workload = mix(&roster, &tokens, n, &mut rng, &tag, &mut writes);
        scenarios.push(
            scenario(
                &server,
                ui,
                &format!("[{name}] {} at {:.0}/s", api_report::MIX, args.mix_rate),
                workload,
                open(args, args.mix_rate, duration),
                Some(api_report::MIX),
            )
            .await,
        );
        let soak = if args.soak_seconds > 0 {
            Some(
                soak(
                    args,
                    &roster,
                    &tokens,
                    &server,
                    ui,
                    name,
                    &mut rng,
                    &tag,
                    &mut writes,
                )
                .await,
            )
        } else {
            None
        };
        (scenarios, soak)
    }
    .await;
    let (scenarios, soak) = scenarios;
    let warnings = server.stop().await;
    for warning in &warnings {
        ui.line(&format!("    server: {warning}"));
    }
    Ok(EngineResults {
        name,
        version,
        location: location.to_string(),
        kept,
        reused,
        import_seconds,
        database_bytes,
        roster_teachers: roster.teachers.len(),
        roster_teachers_in_tenant: roster.teachers_in_tenant,
        roster_classes: roster.classes(),
        roster_students: roster.students(),
        scenarios,
        soak,
        server_warnings: warnings,
    })
}

fn open(args: &ApiBenchArgs, rate: f64, window: Duration) -> RunOptions {
    RunOptions {
        pace: Pace::Open { rate },
        connections: args.connections,
        window,
        give_up_after: Duration::from_secs(30),
        request_timeout: Duration::from_secs(60),
    }
}

fn closed(args: &ApiBenchArgs, duration: Duration) -> RunOptions {
    RunOptions {
        pace: Pace::Closed { duration },
        connections: args.connections,
        window: Duration::from_secs(60),
        give_up_after: Duration::from_secs(30),
        request_timeout: Duration::from_secs(60),
    }
}

/// Runs one scenario with a live progress line and summarises it.
async fn scenario(
    server: &Server,
    ui: &Ui,
    title: &str,
    workload: Workload,
    options: RunOptions,
    name: Option<&str>,
) -> ScenarioResult {
    ui.start(title);
    let peak_reset = server.reset_peak();
    let live = Arc::new(Live::default());
    let total = match options.pace {
        Pace::Open { .. } => Some(workload.requests.len()),
        Pace::Closed { .. } => None,
    };
    let ticker = progress_ticker(ui, live.clone(), total, server.pid, None);
    let outcome = load::run(server.address, Arc::new(workload), options, live).await;
    ticker.abort();
    let peak = server.status_kib("VmHWM");
    let result = api_report::summarise(name.unwrap_or(title), &options, &outcome, peak, peak_reset);
    ui.line(&format!(
        "    {:.0} answers/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, {} errors{}, server peak RSS {}",
        result.achieved_rate,
        result.latency.p50 as f64 / 1e3,
        result.latency.p99 as f64 / 1e3,
        result.latency.max as f64 / 1e3,
        result.error_count(),
        not_sent(&result),
        mib(peak)
    ));
    result
}

/// `, N not sent` when the server fell too far behind.
fn not_sent(result: &ScenarioResult) -> String {
    if result.not_sent > 0 {
        format!(", {} not sent (over 30 s overdue)", result.not_sent)
    } else {
        String::new()
    }
}

/// Updates the progress line every half second (and prints a line every 30 s, for logs).
fn progress_ticker(
    ui: &Ui,
    live: Arc<Live>,
    total: Option<usize>,
    pid: u32,
    window_peaks: Option<Arc<std::sync::Mutex<Vec<u64>>>>,
) -> tokio::task::JoinHandle<()> {
    let bar = ui.bar.clone();
    let started = Instant::now();
    let title = bar.message();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut last_line = Instant::now();
        loop {
            tick.tick().await;
            let answered = live.answered.load(Ordering::Relaxed);
            let failed = live.failed.load(Ordering::Relaxed);
            let seconds = started.elapsed().as_secs_f64().max(1e-3);
            let rss = proc_status_kib(pid, "VmRSS");
            let of = total.map_or_else(String::new, |t| format!("/{t}"));
            let peaks = window_peaks
                .as_ref()
                .and_then(|p| p.lock().ok().map(|p| p.clone()))
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let list: Vec<String> = p.iter().map(|k| format!("{}", k / 1024)).collect();
                    format!(", peak RSS per window {} MiB", list.join(" "))
                })
                .unwrap_or_default();
            let text = format!(
                "{answered}{of} answered ({:.0}/s), {failed} failed, server RSS {}{peaks}",
                answered as f64 / seconds,
                mib(rss)
            );
            bar.set_message(format!("{title} — {text}"));
            if last_line.elapsed() >= Duration::from_secs(30) {
                last_line = Instant::now();
                bar.suspend(|| eprintln!("    {:>5.0} s: {text}", seconds));
            }
        }
    })
}

/// The soak: the mix at its rate for `--soak-seconds`, the server's peak RSS taken per
/// window (a minute, or half the soak when shorter than two minutes).
#[allow(clippy::too_many_arguments)]
async fn soak(
    args: &ApiBenchArgs,
    roster: &Roster,
    tokens: &Tokens,
    server: &Server,
    ui: &Ui,
    name: &str,
    rng: &mut SplitMix64,
    tag: &str,
    writes: &mut u64,
) -> SoakResult {
    let seconds = args.soak_seconds;
    let window = if seconds >= 120 {
        Duration::from_secs(60)
    } else {
        Duration::from_secs_f64((seconds as f64 / 2.0).max(1.0))
    };
    let n = (args.mix_rate * seconds as f64) as usize;
    ui.start(&format!(
        "[{name}] preparing {n} requests for the soak ({seconds} s at {:.0}/s)",
        args.mix_rate
    ));
    let workload = mix(roster, tokens, n, rng, tag, writes);
    let title = format!(
        "[{name}] {} at {:.0}/s for {seconds} s",
        api_report::SOAK,
        args.mix_rate
    );
    ui.start(&title);
    let peak_reset = server.reset_peak();
    let live = Arc::new(Live::default());
    let peaks = Arc::new(std::sync::Mutex::new(Vec::new()));
    let ticker = progress_ticker(ui, live.clone(), Some(n), server.pid, Some(peaks.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, peaks, pid) = (stop.clone(), peaks.clone(), server.pid);
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let mut samples = Vec::new();
            let mut next_window = started + window;
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let now = tokio::time::Instant::now();
                if let Some(rss) = proc_status_kib(pid, "VmRSS") {
                    samples.push((now.duration_since(started).as_secs_f64(), rss));
                }
                if now >= next_window {
                    // The window's high-water mark, then a fresh mark for the next one.
                    if let (Some(hwm), Ok(mut peaks)) =
                        (proc_status_kib(pid, "VmHWM"), peaks.lock())
                    {
                        peaks.push(hwm);
                    }
                    reset_peak(pid);
                    next_window += window;
                }
            }
            samples
        })
    };
    let options = open(args, args.mix_rate, window);
    let outcome = load::run(server.address, Arc::new(workload), options, live).await;
    stop.store(true, Ordering::Relaxed);
    ticker.abort();
    let rss_samples = sampler.await.unwrap_or_default();
    let mut window_peaks = peaks.lock().map(|p| p.clone()).unwrap_or_default();
    // The last (possibly partial) window's mark.
    if let Some(hwm) = server.status_kib("VmHWM") {
        let windows = outcome
            .samples
            .iter()
            .map(|s| usize::from(s.window) + 1)
            .max()
            .unwrap_or(0);
        if window_peaks.len() < windows {
            window_peaks.push(hwm);
        }
    }
    let result = api_report::summarise(
        api_report::SOAK,
        &options,
        &outcome,
        window_peaks.iter().copied().max(),
        peak_reset,
    );
    let soak = api_report::soak_result(result, &outcome, window, window_peaks, rss_samples);
    ui.line(&format!(
        "    {:.0} answers/s, p99 {:.2} ms, {} errors{}; server peak RSS first window {}, last window {}",
        soak.scenario.achieved_rate,
        soak.scenario.latency.p99 as f64 / 1e3,
        soak.scenario.error_count(),
        not_sent(&soak.scenario),
        mib(soak.first_peak_kib()),
        mib(soak.last_peak_kib())
    ));
    soak
}

/// Students of the tenant `bench`, or `None` when there is no such tenant (a fresh
/// database).
async fn existing_students(conn: &DatabaseConnection) -> Option<u64> {
    let tenant = parent_connection::tenants::find(conn, "bench").await.ok()?;
    sql::count(
        conn,
        "SELECT COUNT(*) AS n FROM students WHERE tenant_id = $1",
        vec![Value::BigInt(Some(tenant.id.0))],
    )
    .await
    .ok()
    .map(|n| n.max(0) as u64)
}

/// Rows of a query as typed values, by column name.
fn text(row: &sea_orm::QueryResult, column: &str) -> Result<String> {
    row.try_get::<String>("", column)
        .with_context(|| format!("cannot read column {column}"))
}

fn id(row: &sea_orm::QueryResult, column: &str) -> Result<i64> {
    row.try_get::<i64>("", column)
        .with_context(|| format!("cannot read column {column}"))
}

/// Reads `wanted` teachers (a seeded sample of the tenant's active teachers), their active
/// classes, the classes' active students and those students' active parents and guardians.
pub async fn read_roster(conn: &DatabaseConnection, wanted: usize, seed: u64) -> Result<Roster> {
    let tenant = parent_connection::tenants::find(conn, "bench")
        .await
        .context("the database has no tenant 'bench'")?;
    let tenant_id = Value::BigInt(Some(tenant.id.0));
    let rows = sql::query(
        conn,
        "SELECT e.person_id AS teacher_id, st.source_id AS teacher, c.id AS class_id, c.source_id AS class \
         FROM enrollments e JOIN staff st ON st.id = e.person_id JOIN classes c ON c.id = e.class_id \
         WHERE e.tenant_id = $1 AND e.role = 'teacher' AND e.status = 'active' AND st.status = 'active' AND c.status = 'active' \
         ORDER BY e.person_id, c.id",
        vec![tenant_id.clone()],
    )
    .await
    .context("cannot read the teachers")?;
    // (teacher id, source id, [(class id, class source id)])
    type TeacherRows = Vec<(i64, String, Vec<(i64, String)>)>;
    let mut all: TeacherRows = Vec::new();
    for row in &rows {
        let teacher_id = id(row, "teacher_id")?;
        let class = (id(row, "class_id")?, text(row, "class")?);
        match all.last_mut() {
            Some((last, _, classes)) if *last == teacher_id => classes.push(class),
            _ => all.push((teacher_id, text(row, "teacher")?, vec![class])),
        }
    }
    let teachers_in_tenant = all.len();
    SplitMix64::new(seed ^ 0x7EAC_4E25).shuffle(&mut all);
    all.truncate(wanted);

    let class_ids: Vec<i64> = all
        .iter()
        .flat_map(|(_, _, classes)| classes.iter().map(|(id, _)| *id))
        .collect();
    let mut students_of: std::collections::HashMap<i64, Vec<(i64, String)>> =
        std::collections::HashMap::new();
    for chunk in class_ids.chunks(500) {
        let rows = sql::query(
            conn,
            &format!(
                "SELECT e.class_id AS class_id, s.id AS student_id, s.source_id AS student \
                 FROM enrollments e JOIN students s ON s.id = e.person_id \
                 WHERE e.tenant_id = $1 AND e.role = 'student' AND e.status = 'active' AND s.status = 'active' \
                 AND e.class_id IN ({}) ORDER BY e.class_id, s.id",
                sql::id_list(chunk.iter().copied())
            ),
            vec![tenant_id.clone()],
        )
        .await
        .context("cannot read the classes' students")?;
        for row in &rows {
            students_of
                .entry(id(row, "class_id")?)
                .or_default()
                .push((id(row, "student_id")?, text(row, "student")?));
        }
    }
    let student_ids: Vec<i64> = students_of
        .values()
        .flat_map(|s| s.iter().map(|(id, _)| *id))
        .collect();
    let mut guardians_of: std::collections::HashMap<i64, Vec<i64>> =
        std::collections::HashMap::new();
    for chunk in student_ids.chunks(500) {
        let rows = sql::query(
            conn,
            &format!(
                "SELECT student_id, contact_id FROM student_contacts \
                 WHERE tenant_id = $1 AND status = 'active' AND relationship IN ('parent', 'guardian') \
                 AND student_id IN ({}) ORDER BY student_id, contact_id",
                sql::id_list(chunk.iter().copied())
            ),
            vec![tenant_id.clone()],
        )
        .await
        .context("cannot read the students' guardians")?;
        for row in &rows {
            guardians_of
                .entry(id(row, "student_id")?)
                .or_default()
                .push(id(row, "contact_id")?);
        }
    }
    let teachers = all
        .into_iter()
        .filter_map(|(_, source_id, classes)| {
            let classes: Vec<Class> = classes
                .into_iter()
                .filter_map(|(class_id, class_source)| {
                    let students: Vec<Student> = students_of
                        .get(&class_id)?
                        .iter()
                        .map(|(student_id, source)| Student {
                            source_id: source.clone(),
                            guardians: guardians_of.get(student_id).cloned().unwrap_or_default(),
                        })
                        .collect();
                    (!students.is_empty()).then_some(Class {
                        source_id: class_source,
                        students,
                    })
                })
                .collect();
            (!classes.is_empty()).then_some(Teacher { source_id, classes })
        })
        .collect();
    Ok(Roster {
        teachers,
        teachers_in_tenant,
    })
}

/// The bearer tokens of a run: one per teacher (same order as the roster), then the apps,
/// then the admins.
pub struct Tokens {
    /// `Authorization` values.
    pub values: Vec<HeaderValue>,
    /// Index of the first app token.
    pub first_app: u32,
    /// Apps.
    pub apps: u32,
    /// Index of the first admin token.
    pub first_admin: u32,
    /// Admins.
    pub admins: u32,
}

impl Tokens {
    /// Signs the tokens with `secret` (HS256, as `parent-connection token` does), valid
    /// for a day.
    pub fn mint(
        auth: &AuthConfig,
        secret: &str,
        roster: &Roster,
        apps: usize,
        admins: usize,
    ) -> Result<Self> {
        let auth = AuthConfig {
            development: true,
            jwt_secret: secret.to_string(),
            signing_key_path: String::new(),
            signing_key_id: String::new(),
            ..auth.clone()
        };
        let key = SigningKey::from_config(&auth).map_err(|e| anyhow::anyhow!("{e}"))?;
        key.check(false).map_err(|e| anyhow::anyhow!("{e}"))?;
        let ttl = Duration::from_secs(24 * 3600);
        let sign = |subject: Subject| -> Result<HeaderValue> {
            let claims = mint::claims(&auth, "bench", &subject, ttl);
            let token = mint::sign(&key, &claims).map_err(|e| anyhow::anyhow!("{e}"))?;
            HeaderValue::from_str(&format!("Bearer {token}")).context("a token is not a header")
        };
        let mut values = Vec::new();
        for teacher in &roster.teachers {
            values.push(sign(Subject::User {
                source_id: teacher.source_id.clone(),
                roles: vec![Role::Teacher],
            })?);
        }
        let first_app = values.len() as u32;
        let scope = Scope::parse("EduRoster.Read.All").map_err(anyhow::Error::msg)?;
        for app in 0..apps {
            values.push(sign(Subject::App {
                app_id: format!("bench-app-{app}"),
                scopes: vec![scope.clone()],
            })?);
        }
        let first_admin = values.len() as u32;
        for admin in 0..admins {
            values.push(sign(Subject::User {
                source_id: format!("bench-admin-{admin}"),
                roles: vec![Role::GlobalAdmin],
            })?);
        }
        Ok(Self {
            values,
            first_app,
            apps: apps as u32,
            first_admin,
            admins: admins as u32,
        })
    }
}

fn workload_of(tokens: &Tokens, requests: Vec<Prepared>) -> Workload {
    Workload {
        tokens: tokens.values.clone(),
        requests,
    }
}

fn health_workload() -> Workload {
    Workload {
        tokens: vec![],
        requests: vec![Prepared {
            kind: Kind::Health.index(),
            method: Method::GET,
            path: "/healthz".into(),
            token: None,
            body: None,
        }],
    }
}

/// A random teacher (index), one of its classes and one of that class's students.
fn pick<'a>(roster: &'a Roster, rng: &mut SplitMix64) -> (u32, &'a Class, &'a Student) {
    let t = rng.below(roster.teachers.len() as u64) as usize;
    let teacher = &roster.teachers[t];
    let class = &teacher.classes[rng.below(teacher.classes.len() as u64) as usize];
    let student = &class.students[rng.below(class.students.len() as u64) as usize];
    (t as u32, class, student)
}

/// `n` teacher contact reads: each a random teacher reading a random student of one of
/// its classes, with its own token.
pub fn teacher_reads(roster: &Roster, tokens: &Tokens, n: usize, rng: &mut SplitMix64) -> Workload {
    let requests = (0..n)
        .map(|_| {
            let (t, _, student) = pick(roster, rng);
            Prepared {
                kind: Kind::Contacts.index(),
                method: Method::GET,
                path: format!("/api/v1/students/{}/contacts", student.source_id).into(),
                token: Some(t),
                body: None,
            }
        })
        .collect();
    workload_of(tokens, requests)
}

/// `n` requests of the school-day mix, kinds drawn with [`Kind::mix_per_mille`]. Writes
/// carry `tag` and a running number (`writes`), so two runs never send the same contact
/// request.
pub fn mix(
    roster: &Roster,
    tokens: &Tokens,
    n: usize,
    rng: &mut SplitMix64,
    tag: &str,
    writes: &mut u64,
) -> Workload {
    let mut requests = Vec::with_capacity(n);
    while requests.len() < n {
        let mut draw = rng.below(1000);
        let kind = Kind::ALL
            .iter()
            .copied()
            .find(|k| {
                let share = k.mix_per_mille();
                if draw < share {
                    true
                } else {
                    draw -= share;
                    false
                }
            })
            .unwrap_or(Kind::Contacts);
        let (t, class, student) = pick(roster, rng);
        let get = |path: String, token: u32| Prepared {
            kind: kind.index(),
            method: Method::GET,
            path: path.into(),
            token: Some(token),
            body: None,
        };
        let post = |path: String, token: u32, body: serde_json::Value| Prepared {
            kind: kind.index(),
            method: Method::POST,
            path: path.into(),
            token: Some(token),
            body: Some(Bytes::from(body.to_string())),
        };
        let request = match kind {
            Kind::Contacts | Kind::Health => get(
                format!("/api/v1/students/{}/contacts", student.source_id),
                t,
            ),
            Kind::Classes => get("/api/v1/classes".into(), t),
            Kind::ClassStudents => get(format!("/api/v1/classes/{}/students", class.source_id), t),
            Kind::Graph => get(
                format!(
                    "/education/users/{}?$select=relatedContacts",
                    student.source_id
                ),
                tokens.first_app + rng.below(u64::from(tokens.apps)) as u32,
            ),
            Kind::AdminRequests => get(
                "/api/v1/contact-requests?status=pending".into(),
                tokens.first_admin + rng.below(u64::from(tokens.admins)) as u32,
            ),
            Kind::ContactRequest => {
                *writes += 1;
                post(
                    format!("/api/v1/students/{}/contact-requests", student.source_id),
                    t,
                    serde_json::json!({
                        "action": "add",
                        "contact": {
                            "givenName": "Bench",
                            "familyName": format!("Request {tag}-{writes}"),
                            "emailAddress": format!("bench-{tag}-{writes}@example.com"),
                            "relationship": "guardian"
                        }
                    }),
                )
            }
            Kind::ChatStart => {
                if student.guardians.is_empty() {
                    continue;
                }
                let guardian =
                    student.guardians[rng.below(student.guardians.len() as u64) as usize];
                post(
                    "/api/v1/chats".into(),
                    t,
                    serde_json::json!({
                        "studentId": student.source_id,
                        "contactIds": [guardian.to_string()]
                    }),
                )
            }
            Kind::Assignment => {
                *writes += 1;
                let slot = rng.below(20);
                post(
                    format!("/api/v1/classes/{}/assignments", class.source_id),
                    t,
                    serde_json::json!({
                        "externalId": format!("bench-{slot}"),
                        "title": format!("Reading {tag}-{writes}"),
                        "dueAt": "2026-12-18T23:59:00-05:00",
                        "points": 10
                    }),
                )
            }
        };
        requests.push(request);
    }
    workload_of(tokens, requests)
}

/// `/proc/PID/status` line `key`, KiB.
fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    kib_line(
        &std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        key,
    )
}

/// Resets the resident-set high-water mark of process `pid` (our own child) to its
/// current resident size; false where the system does not allow it.
fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The service, running as a child process of this program.
struct Server {
    child: std::process::Child,
    pid: u32,
    address: SocketAddr,
    log: PathBuf,
}

impl Server {
    /// Starts `parent-connection serve` on a free loopback port with `url` and the
    /// [`SERVE_SETTINGS`], and waits until `GET /healthz` answers.
    async fn start(product: &ProductBin, url: &str, secret: &str, dir: &Path) -> Result<Self> {
        let port = parent_connection_testkit::free_port().context("cannot find a free port")?;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let log = dir.join("serve.log");
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mail = dir.join("mail");
        let mut command = product.command();
        command
            .args(["serve", "--bind", &address.to_string()])
            .env_remove("RUST_LOG")
            .env("DATABASE_URL", url)
            .env("PARENT_CONNECTION__DATABASE__URL", url)
            .env("JWT_SECRET", secret)
            .env("PARENT_CONNECTION__AUTH__DEVELOPMENT", "true")
            // PostgreSQL needs a configured privacy key; SQLite would make privacy.key.
            .env("PARENT_CONNECTION__PRIVACY__HASH_KEY", BENCH_PRIVACY_KEY)
            .env("MAIL_URL", format!("file://{}", mail.display()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log_file);
        for (key, value, _) in SERVE_SETTINGS {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", product.path().display()))?;
        let mut server = Self {
            pid: child.id(),
            child,
            address,
            log,
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                bail!(
                    "the server stopped at start ({status}): {}",
                    server.log_tail()
                );
            }
            if matches!(load::status_of(address, "/healthz").await, Ok(200)) {
                return Ok(server);
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!(
                    "the server did not answer /healthz within 120 s: {}",
                    server.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn status_kib(&self, key: &str) -> Option<u64> {
        proc_status_kib(self.pid, key)
    }

    fn reset_peak(&self) -> bool {
        reset_peak(self.pid)
    }

    /// The last lines of the server's log.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
        if tail.is_empty() {
            format!("{} is empty", self.log.display())
        } else {
            tail
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL after 20 s) and returns the warnings and
    /// errors it logged (deduplicated, at most 20).
    async fn stop(&mut self) -> Vec<String> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        logged_problems(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

/// The warnings and errors of a server log, one line per kind of message (lines that
/// differ only in their numbers are one kind) with how often it came, at most 20 kinds.
fn logged_problems(log: &str) -> Vec<String> {
    let mut kinds: Vec<(String, String, u64)> = Vec::new();
    for line in log.lines() {
        // Lines of the pretty format look like "<time>  WARN <target>: <message>".
        let Some(at) = line.find(" WARN ").or_else(|| line.find(" ERROR ")) else {
            continue;
        };
        let message = line[at..].trim();
        // Each run of digits becomes one '#'.
        let mut shape = String::with_capacity(message.len());
        let mut in_number = false;
        for c in message.chars() {
            if c.is_ascii_digit() {
                if !in_number {
                    shape.push('#');
                }
                in_number = true;
            } else {
                shape.push(c);
                in_number = false;
            }
        }
        match kinds.iter().position(|(s, _, _)| *s == shape) {
            Some(i) => kinds[i].2 += 1,
            None if kinds.len() < 20 => kinds.push((shape, message.to_string(), 1)),
            None => {}
        }
    }
    kinds
        .into_iter()
        .map(|(_, first, count)| {
            if count > 1 {
                format!("{first} (and {} more like it)", count - 1)
            } else {
                first
            }
        })
        .collect()
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roster() -> Roster {
        let student = |id: u32, guardians: Vec<i64>| Student {
            source_id: format!("stu-{id}"),
            guardians,
        };
        Roster {
            teachers: vec![
                Teacher {
                    source_id: "tch-1".into(),
                    classes: vec![Class {
                        source_id: "cls-1".into(),
                        students: vec![student(1, vec![11, 12]), student(2, vec![])],
                    }],
                },
                Teacher {
                    source_id: "tch-2".into(),
                    classes: vec![Class {
                        source_id: "cls-2".into(),
                        students: vec![student(3, vec![31])],
                    }],
                },
            ],
            teachers_in_tenant: 2,
        }
    }

    fn tokens() -> Tokens {
        Tokens {
            values: (0..5)
                .map(|i| HeaderValue::from_str(&format!("Bearer {i}")).unwrap())
                .collect(),
            first_app: 2,
            apps: 2,
            first_admin: 4,
            admins: 1,
        }
    }

    #[test]
    fn server_problems_are_grouped_by_kind() {
        let log = "2026-12-04T21:00:00Z  INFO parent_connection: listening\n\
                   2026-12-04T21:00:01Z  WARN sqlx::pool::acquire: slow acquire acquired_after_secs=2.29\n\
                   2026-12-04T21:00:02Z  WARN sqlx::pool::acquire: slow acquire acquired_after_secs=2.5\n\
                   2026-12-04T21:00:03Z ERROR parent_connection::api: database is locked\n";
        assert_eq!(
            logged_problems(log),
            vec![
                "WARN sqlx::pool::acquire: slow acquire acquired_after_secs=2.29 (and 1 more like it)",
                "ERROR parent_connection::api: database is locked"
            ]
        );
        assert!(logged_problems("").is_empty());
    }

    #[test]
    fn the_mix_shares_add_up_with_ten_percent_writes() {
        let total: u64 = Kind::ALL.iter().map(|k| k.mix_per_mille()).sum();
        assert_eq!(total, 1000);
        let writes: u64 = Kind::ALL
            .iter()
            .filter(|k| k.is_write())
            .map(|k| k.mix_per_mille())
            .sum();
        assert_eq!(writes, 100);
        for kind in Kind::ALL {
            assert_eq!(Kind::from_index(kind.index()), Some(kind));
        }
    }

    #[test]
    fn teachers_read_only_their_own_students_with_their_own_token() {
        let roster = roster();
        let workload = teacher_reads(&roster, &tokens(), 500, &mut SplitMix64::new(1));
        assert_eq!(workload.requests.len(), 500);
        let mut seen = std::collections::HashSet::new();
        for request in &workload.requests {
            let token = request.token.unwrap();
            let own = match token {
                0 => [
                    "/api/v1/students/stu-1/contacts",
                    "/api/v1/students/stu-2/contacts",
                ]
                .contains(&&*request.path),
                1 => &*request.path == "/api/v1/students/stu-3/contacts",
                _ => false,
            };
            assert!(own, "{request:?}");
            seen.insert(request.path.clone());
        }
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn the_mix_has_every_kind_in_about_its_share() {
        let roster = roster();
        let mut writes = 0;
        let n = 20_000;
        let workload = mix(
            &roster,
            &tokens(),
            n,
            &mut SplitMix64::new(2),
            "t",
            &mut writes,
        );
        assert_eq!(workload.requests.len(), n);
        for kind in Kind::ALL {
            let count = workload
                .requests
                .iter()
                .filter(|r| r.kind == kind.index())
                .count() as f64;
            let share = kind.mix_per_mille() as f64 / 1000.0;
            // Chat starts skip the student without guardians, so allow a little slack.
            assert!(
                (count / n as f64 - share).abs() < 0.015,
                "{kind:?}: {count} of {n}"
            );
        }
        for request in &workload.requests {
            let kind = Kind::from_index(request.kind).unwrap();
            let token = request.token.unwrap();
            match kind {
                Kind::Graph => assert!((2..4).contains(&token)),
                Kind::AdminRequests => assert_eq!(token, 4),
                _ => assert!(token < 2),
            }
            assert_eq!(request.body.is_some(), kind.is_write(), "{request:?}");
            if kind == Kind::ChatStart {
                let body: serde_json::Value =
                    serde_json::from_slice(request.body.as_ref().unwrap()).unwrap();
                let guardian = body["contactIds"][0].as_str().unwrap();
                assert!(["11", "12", "31"].contains(&guardian), "{body}");
                assert_ne!(body["studentId"], "stu-2");
            }
        }
        // Every contact request is a new one.
        let emails: std::collections::HashSet<_> = workload
            .requests
            .iter()
            .filter(|r| r.kind == Kind::ContactRequest.index())
            .map(|r| r.body.clone())
            .collect();
        let requests = workload
            .requests
            .iter()
            .filter(|r| r.kind == Kind::ContactRequest.index())
            .count();
        assert_eq!(emails.len(), requests);
    }
}
