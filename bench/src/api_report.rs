//! The `api` section of `BENCHMARKS.md` and the terminal summary of `parent-connection-bench api`.

use crate::api::{ApiBenchArgs, Kind, SERVE_SETTINGS};
use crate::load::{Latency, Outcome, Pace, RunOptions};
use crate::measure::{self, Machine};
use crate::report::{mib, n, scale_note, targets_head, verdict};
use std::fmt::Write as _;
use std::time::Duration;

/// Scenario: `GET /healthz`, closed loop.
pub const HEALTH_SATURATION: &str = "saturation: GET /healthz";
/// Scenario: teacher contact reads, closed loop.
pub const READ_SATURATION: &str = "saturation: teacher contact reads";
/// Scenario: teacher contact reads, open loop.
pub const READS: &str = "teacher contact reads";
/// Scenario: the school-day mix, open loop.
pub const MIX: &str = "school-day mix";
/// Scenario: the soak.
pub const SOAK: &str = "soak (the mix)";

/// Teacher contact reads: the rate and the p99 to meet there.
pub const TARGET_READ_RATE: f64 = 5_000.0;
/// p99 of teacher contact reads at [`TARGET_READ_RATE`], milliseconds.
pub const TARGET_READ_P99_MS: f64 = 5.0;
/// The mix: the rate and the p99 to meet there.
pub const TARGET_MIX_RATE: f64 = 2_000.0;
/// p99 of the mix at [`TARGET_MIX_RATE`], milliseconds.
pub const TARGET_MIX_P99_MS: f64 = 10.0;
/// Saturation of teacher reads, requests per second.
pub const TARGET_SATURATION: f64 = 10_000.0;
/// Largest growth of the server's peak RSS from the soak's first minute to its last.
pub const TARGET_SOAK_GROWTH: f64 = 0.10;
/// A fixed-rate scenario keeps up when it answers at least this share of its rate.
pub const KEEPS_UP: f64 = 0.99;

/// One request kind's figures in a scenario.
#[derive(Debug, Clone)]
pub struct KindFigures {
    /// The kind.
    pub kind: Kind,
    /// Its latency.
    pub latency: Latency,
    /// Answers per status.
    pub statuses: Vec<(u16, u64)>,
}

/// Requests that failed in one way: an unexpected status, or no answer.
#[derive(Debug, Clone)]
pub struct ErrorLine {
    /// The kind.
    pub kind: Kind,
    /// `HTTP 503`, `timeout`, `send: …`.
    pub what: String,
    /// How many.
    pub count: u64,
    /// The start of the first such answer's body.
    pub example: Option<String>,
}

/// One scenario, summarised.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// Pacing.
    pub pace: Pace,
    /// Answers per second.
    pub achieved_rate: f64,
    /// Answers (any status).
    pub answered: u64,
    /// Latency of every answer.
    pub latency: Latency,
    /// Per kind.
    pub kinds: Vec<KindFigures>,
    /// Everything that is not an expected answer.
    pub errors: Vec<ErrorLine>,
    /// Open loop: requests not sent because the server fell more than 30 s behind.
    pub not_sent: u64,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// The server's peak RSS during the scenario, KiB.
    pub peak_rss_kib: Option<u64>,
    /// False when the server's peak could not be reset, so it is the process's peak so far.
    pub peak_is_scenario: bool,
}

impl ScenarioResult {
    /// Requests that failed (unexpected status or no answer).
    pub fn error_count(&self) -> u64 {
        self.errors.iter().map(|e| e.count).sum()
    }

    /// The open-loop rate, if any.
    pub fn target_rate(&self) -> Option<f64> {
        match self.pace {
            Pace::Open { rate } => Some(rate),
            Pace::Closed { .. } => None,
        }
    }

    /// True when an open-loop run answered every request, without errors, at its rate.
    pub fn kept_up(&self) -> bool {
        self.target_rate()
            .is_some_and(|rate| self.achieved_rate >= KEEPS_UP * rate)
            && self.error_count() == 0
            && self.not_sent == 0
    }
}

/// Summarises `outcome`.
pub fn summarise(
    name: &str,
    options: &RunOptions,
    outcome: &Outcome,
    peak_rss_kib: Option<u64>,
    peak_is_scenario: bool,
) -> ScenarioResult {
    let mut kinds = Vec::new();
    let mut errors = Vec::new();
    for kind in Kind::ALL {
        let index = kind.index();
        let statuses: Vec<(u16, u64)> = outcome
            .statuses
            .iter()
            .filter(|((k, _), _)| *k == index)
            .map(|((_, status), n)| (*status, *n))
            .collect();
        let failures: Vec<(&String, u64)> = outcome
            .failures
            .iter()
            .filter(|((k, _), _)| *k == index)
            .map(|((_, reason), n)| (reason, *n))
            .collect();
        if statuses.is_empty() && failures.is_empty() {
            continue;
        }
        for (status, count) in &statuses {
            if !kind.expected().contains(status) {
                errors.push(ErrorLine {
                    kind,
                    what: format!("HTTP {status}"),
                    count: *count,
                    example: outcome.examples.get(&(index, *status)).cloned(),
                });
            }
        }
        for (reason, count) in failures {
            errors.push(ErrorLine {
                kind,
                what: reason.clone(),
                count,
                example: None,
            });
        }
        kinds.push(KindFigures {
            kind,
            latency: outcome.latency(|s| s.kind == index),
            statuses,
        });
    }
    ScenarioResult {
        name: name.to_string(),
        pace: options.pace,
        achieved_rate: outcome.achieved_rate(),
        answered: outcome.samples.len() as u64,
        latency: outcome.latency(|_| true),
        kinds,
        errors,
        not_sent: outcome.not_sent,
        elapsed: outcome.elapsed,
        peak_rss_kib,
        peak_is_scenario,
    }
}

/// One window of the soak.
#[derive(Debug, Clone)]
pub struct WindowFigures {
    /// Answers whose request was due in the window.
    pub answered: u64,
    /// Their latency.
    pub latency: Latency,
    /// The server's peak RSS in the window, KiB.
    pub peak_rss_kib: Option<u64>,
}

/// The soak.
#[derive(Debug, Clone)]
pub struct SoakResult {
    /// The whole run.
    pub scenario: ScenarioResult,
    /// Window length.
    pub window: Duration,
    /// Per window.
    pub windows: Vec<WindowFigures>,
    /// `(seconds since the start, VmRSS KiB)` every 5 s.
    pub rss_samples: Vec<(f64, u64)>,
}

impl SoakResult {
    /// The server's peak RSS in the first window.
    pub fn first_peak_kib(&self) -> Option<u64> {
        self.windows.first().and_then(|w| w.peak_rss_kib)
    }

    /// The server's peak RSS in the last window.
    pub fn last_peak_kib(&self) -> Option<u64> {
        self.windows.last().and_then(|w| w.peak_rss_kib)
    }

    /// Growth from the first window's peak to the last one's (0.05 = +5%).
    pub fn growth(&self) -> Option<f64> {
        let (first, last) = (self.first_peak_kib()?, self.last_peak_kib()?);
        (first > 0 && self.windows.len() >= 2).then(|| last as f64 / first as f64 - 1.0)
    }
}

/// The soak's figures per window.
pub fn soak_result(
    scenario: ScenarioResult,
    outcome: &Outcome,
    window: Duration,
    window_peaks: Vec<u64>,
    rss_samples: Vec<(f64, u64)>,
) -> SoakResult {
    let windows = outcome
        .samples
        .iter()
        .map(|s| usize::from(s.window) + 1)
        .max()
        .unwrap_or(0)
        .max(window_peaks.len());
    let windows = (0..windows)
        .map(|w| {
            let latency = outcome.latency(|s| usize::from(s.window) == w);
            WindowFigures {
                answered: latency.count,
                latency,
                peak_rss_kib: window_peaks.get(w).copied(),
            }
        })
        .collect();
    SoakResult {
        scenario,
        window,
        windows,
        rss_samples,
    }
}

/// One engine's results.
#[derive(Debug, Clone)]
pub struct EngineResults {
    /// `SQLite` or `PostgreSQL`.
    pub name: &'static str,
    /// Engine version.
    pub version: String,
    /// Where (redacted URL or file).
    pub location: String,
    /// True when the database is kept after the run.
    pub kept: bool,
    /// True when an existing database was used (no import in this run).
    pub reused: bool,
    /// The import's wall time, when this run imported.
    pub import_seconds: Option<f64>,
    /// Database size before the load, bytes.
    pub database_bytes: Option<u64>,
    /// Teachers sampled.
    pub roster_teachers: usize,
    /// Active teachers in the tenant.
    pub roster_teachers_in_tenant: usize,
    /// Their classes.
    pub roster_classes: usize,
    /// Their students.
    pub roster_students: usize,
    /// Saturations, reads, mix.
    pub scenarios: Vec<ScenarioResult>,
    /// The soak, when run.
    pub soak: Option<SoakResult>,
    /// Warnings and errors the server logged.
    pub server_warnings: Vec<String>,
}

impl EngineResults {
    /// The scenario named `name`.
    pub fn scenario(&self, name: &str) -> Option<&ScenarioResult> {
        self.scenarios.iter().find(|s| s.name == name)
    }
}

/// Everything one `api` run measured.
#[derive(Debug, Clone)]
pub struct ApiBenchResults {
    /// When the run started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Git commit.
    pub commit: String,
    /// The machine.
    pub machine: Machine,
    /// Students in the district.
    pub students: u64,
    /// Seed.
    pub seed: u64,
    /// The options.
    pub args: ApiBenchArgs,
    /// `[api]` settings as loaded (the token limits apply unchanged).
    pub api: parent_connection::config::ApiConfig,
    /// Pool size.
    pub max_connections: u32,
    /// Load average at the start and the end.
    pub load: (Option<String>, Option<String>),
    /// Per engine.
    pub engines: Vec<EngineResults>,
}

fn ms(micros: u32) -> String {
    let ms = micros as f64 / 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

fn rate(value: f64) -> String {
    format!("{}/s", n(value.round() as u64))
}

fn pacing(s: &ScenarioResult) -> String {
    match s.pace {
        Pace::Open { rate: r } => format!("open loop, {}", rate(r)),
        Pace::Closed { duration } => {
            format!("closed loop, {} s", duration.as_secs())
        }
    }
}

/// The target lines: `(label, check)`; a check gives the cell's text.
fn target_cell(name: &str, e: &EngineResults) -> String {
    let judged_rate =
        |s: &ScenarioResult, target: f64| s.target_rate().is_some_and(|r| (r - target).abs() < 0.5);
    match name {
        READS | MIX => {
            let (target_rate, target_p99) = if name == READS {
                (TARGET_READ_RATE, TARGET_READ_P99_MS)
            } else {
                (TARGET_MIX_RATE, TARGET_MIX_P99_MS)
            };
            let Some(s) = e.scenario(name) else {
                return "n/a".into();
            };
            let p99 = s.latency.p99 as f64 / 1000.0;
            let mut text = format!(
                "p99 {} at {} (of {})",
                ms(s.latency.p99),
                rate(s.achieved_rate),
                rate(s.target_rate().unwrap_or(0.0))
            );
            if s.error_count() + s.not_sent > 0 {
                let _ = write!(text, ", {} errors", n(s.error_count() + s.not_sent));
            }
            if judged_rate(s, target_rate) {
                let _ = write!(text, " — {}", verdict(p99 <= target_p99 && s.kept_up()));
            } else {
                text.push_str(" — not judged (other rate)");
            }
            text
        }
        READ_SATURATION => {
            let Some(s) = e.scenario(READ_SATURATION) else {
                return "n/a".into();
            };
            let health = e
                .scenario(HEALTH_SATURATION)
                .map(|h| h.achieved_rate)
                .filter(|r| *r > 0.0);
            let share = health
                .map(|h| format!(" ({:.0}% of /healthz)", 100.0 * s.achieved_rate / h))
                .unwrap_or_default();
            let errors = if s.error_count() > 0 {
                format!(", {} errors", n(s.error_count()))
            } else {
                String::new()
            };
            format!(
                "{}{share}{errors} — {}",
                rate(s.achieved_rate),
                verdict(s.achieved_rate >= TARGET_SATURATION && s.error_count() == 0)
            )
        }
        _ => match &e.soak {
            None => "not run".into(),
            Some(soak) => match soak.growth() {
                None if soak.scenario.not_sent > 0 => format!(
                    "not measured: the soak stopped after {:.0} s, the server fell behind — **NOT met**",
                    soak.scenario.elapsed.as_secs_f64()
                ),
                None => "not measured (the soak needs two windows)".into(),
                Some(growth) => format!(
                    "{} → {} ({:+.1}%) — {}",
                    mib(soak.first_peak_kib()),
                    mib(soak.last_peak_kib()),
                    growth * 100.0,
                    verdict(growth <= TARGET_SOAK_GROWTH)
                ),
            },
        },
    }
}

/// The section.
pub fn markdown(results: &ApiBenchResults) -> String {
    let args = &results.args;
    let mut md = String::from("## API benchmark\n\n");
    let _ = writeln!(
        md,
        "Written by `parent-connection-bench api` (`bench/src/api.rs`, `bench/src/load.rs`). The district of the import \
         benchmark (same generator and seed, imported with the real import) is served by the real service, \
         `parent-connection serve`, started as a child process on a loopback port. The load generator runs in the \
         benchmark's own process, **on the same {} CPU(s) as the server** (and, for PostgreSQL, as the database server): \
         every figure includes that competition. It sends HTTP/1.1 requests over {} keep-alive connections, prepared \
         before each run from the database: up to {} teachers sampled from the district (per engine below), each with \
         its own token, reading only students of its own classes; {} apps with app-only tokens (`EduRoster.Read.All`); \
         {} admins (`global-admin`).\n",
        results.machine.cpus,
        args.connections,
        n(args.teachers as u64),
        args.apps,
        args.admins
    );
    let _ = writeln!(
        md,
        "- **Open loop** (fixed-rate scenarios and the soak): request *i* is due at t0 + i/rate whatever happened \
         before; a free connection sends the next due request, and when every connection is busy the due requests wait. \
         Latency runs from the **due time** to the last byte of the answer, so a stalled server cannot hide the queue \
         behind it (coordinated omission corrected, as wrk2 does). The client wakes 1 ms before a request is due \
         (tokio's timer resolution); a request sent early is timed from its send. A request more than 30 s overdue \
         is not sent and is counted.\n\
         - **Closed loop** (saturation): each connection sends its next request as soon as it has the previous answer; \
         the rate reached is the highest the server sustains with {} connections.\n\
         - **Errors**: any status other than the expected ones (200; 201 for a contact request; 201 or 200 for a chat \
         start, which re-enters an existing chat, and for an assignment upsert) and any request without an answer.\n\
         - **Server peak RSS**: the serve child's `VmHWM` from `/proc`, reset through `/proc/PID/clear_refs` at \
         the start of each scenario (and of each soak window). On SQLite it includes the page cache of each pooled \
         connection (`cache_size` 64 MiB per connection); on PostgreSQL the database server's memory is not in it.\n",
        args.connections
    );
    let _ = writeln!(
        md,
        "- **Date (UTC):** {}",
        results.started_at.format("%Y-%m-%d %H:%M")
    );
    let _ = writeln!(md, "- **Commit:** `{}`", results.commit);
    md.push_str(&measure::machine_lines(&results.machine));
    if let (Some(before), Some(after)) = &results.load {
        let _ = writeln!(
            md,
            "- **Load average (1/5/15 min):** {before} at the start, {after} at the end"
        );
    }
    let _ = writeln!(
        md,
        "- **Scale:** {} students (seed {}); per engine below: the sampled teachers, their classes and students",
        n(results.students),
        results.seed
    );
    let _ = writeln!(
        md,
        "- **Runs:** warm-up {} s (the mix at half its rate, not reported); saturation {} s each; teacher reads at {} and the mix at {} for {} s each; soak at {} for {} s",
        args.warmup_seconds,
        args.saturation_seconds,
        rate(args.read_rate),
        rate(args.mix_rate),
        args.duration,
        rate(args.mix_rate),
        args.soak_seconds
    );
    let mix: Vec<String> = Kind::ALL
        .iter()
        .filter(|k| k.mix_per_mille() > 0)
        .map(|k| format!("{} {:.1}%", k.name(), k.mix_per_mille() as f64 / 10.0))
        .collect();
    let _ = writeln!(
        md,
        "- **School-day mix:** {} (writes: 10%). Contact requests propose a new guardian (each one distinct); chat starts name one active parent/guardian of the student; assignment upserts use one of 20 external ids per class",
        mix.join(", ")
    );
    let _ = writeln!(
        md,
        "- **Server settings** (environment of the serve child; `bench/src/api.rs`, `SERVE_SETTINGS`):"
    );
    for (key, value, why) in SERVE_SETTINGS {
        let _ = writeln!(md, "  - `{key}={value}`: {why}");
    }
    let _ = writeln!(
        md,
        "  - per-token rate limit left as configured: {} requests/s, burst {} (`api.token_requests_per_second`, `api.token_burst`); \
         each caller stays under it ({} teachers share the read rate, {} apps the Graph reads, {} admins the request lists), so a 429 is an error here; \
         pool of {} connections (`database.max_connections`; 0, the default, is twice the CPUs); the dispatcher is off, so chat invitations stay queued (at most `invite_limit_per_tenant_per_day` a day are queued, the rest are recorded as not sent)",
        results.api.token_requests_per_second,
        results.api.token_burst,
        n(args.teachers as u64),
        args.apps,
        args.admins,
        results.max_connections
    );
    if args
        .postgres_url
        .as_deref()
        .is_some_and(|url| url.contains("sslmode=disable"))
    {
        let _ = writeln!(
            md,
            "- **PostgreSQL connection:** loopback TCP without TLS (`sslmode=disable`), as a database on the same machine should be reached: with TLS every statement is encrypted on both sides of the loopback, on the same CPUs (measured: 30% fewer teacher reads a second; [docs/database.md](docs/database.md#pool-sizes-and-caches))"
        );
    }
    scale_note(&mut md, results.students);
    targets_head(&mut md, results.engines.iter().map(|e| e.name));
    let targets = [
        (
            READS,
            format!(
                "teacher contact reads: p99 ≤ {TARGET_READ_P99_MS:.0} ms at {}",
                rate(TARGET_READ_RATE)
            ),
        ),
        (
            MIX,
            format!(
                "school-day mix, 10% writes: p99 ≤ {TARGET_MIX_P99_MS:.0} ms at {}",
                rate(TARGET_MIX_RATE)
            ),
        ),
        (
            READ_SATURATION,
            format!("teacher-read saturation ≥ {}", rate(TARGET_SATURATION)),
        ),
        (
            SOAK,
            format!(
                "server peak RSS flat over the soak (last minute ≤ first + {:.0}%)",
                TARGET_SOAK_GROWTH * 100.0
            ),
        ),
    ];
    for (name, label) in &targets {
        let mut line = format!("| {label} |");
        for e in &results.engines {
            let _ = write!(line, " {} |", target_cell(name, e));
        }
        let _ = writeln!(md, "{line}");
    }
    let _ = writeln!(
        md,
        "\nA fixed-rate target is met when its p99 is within the bound, the run answered at least {:.0}% of its rate, and nothing failed.",
        KEEPS_UP * 100.0
    );

    for e in &results.engines {
        engine_section(&mut md, e);
    }

    let _ = writeln!(md, "\n### How to reproduce\n");
    let _ = writeln!(md, "```sh");
    let _ = writeln!(md, "cargo build --release --workspace");
    let _ = writeln!(md, "{}", reproduce(args));
    let _ = writeln!(md, "```\n");
    let _ = writeln!(
        md,
        "`--sqlite-file FILE` and `--postgres-database NAME` keep the district after the run and reuse it next time (no import; rows written by earlier runs stay). `--help` lists the rates, durations and sizes."
    );
    md
}

/// The command line of this run (options left at their defaults are not repeated; the
/// PostgreSQL URL is a placeholder).
fn reproduce(args: &ApiBenchArgs) -> String {
    let mut command = format!(
        "target/release/parent-connection-bench api --students {} --seed {}",
        args.students, args.seed
    );
    if let Some(url) = &args.postgres_url {
        command.push_str(" \\\n  --postgres-url postgres://USER:PASSWORD@127.0.0.1:5432/postgres");
        if url.contains("sslmode=disable") {
            command.push_str("?sslmode=disable");
        }
    }
    if args.skip_sqlite {
        command.push_str(" --skip-sqlite");
    }
    let numbers = [
        ("--teachers", args.teachers as f64, 2_000.0),
        ("--apps", args.apps as f64, 50.0),
        ("--admins", args.admins as f64, 20.0),
        ("--connections", args.connections as f64, 64.0),
        ("--read-rate", args.read_rate, TARGET_READ_RATE),
        ("--mix-rate", args.mix_rate, TARGET_MIX_RATE),
        ("--duration", args.duration as f64, 30.0),
        ("--saturation-seconds", args.saturation_seconds as f64, 15.0),
        ("--warmup-seconds", args.warmup_seconds as f64, 10.0),
        ("--soak-seconds", args.soak_seconds as f64, 600.0),
    ];
    let changed: Vec<String> = numbers
        .iter()
        .filter(|(_, value, default)| value != default)
        .map(|(flag, value, _)| format!("{flag} {value}"))
        .collect();
    if !changed.is_empty() {
        command.push_str(" \\\n  ");
        command.push_str(&changed.join(" "));
    }
    command.push_str(" --out BENCHMARKS.md");
    command
}

fn engine_section(md: &mut String, e: &EngineResults) {
    let _ = writeln!(md, "\n### {} {}\n", e.name, e.version);
    let size = e.database_bytes.map_or_else(String::new, |b| {
        format!(", {:.0} MB before the load", b as f64 / 1e6)
    });
    let origin = match (e.reused, e.import_seconds) {
        (true, _) => "reused from an earlier run".to_string(),
        (false, Some(s)) => format!("imported in this run ({s:.0} s)"),
        (false, None) => "imported in this run".to_string(),
    };
    let _ = writeln!(
        md,
        "Database: `{}`{size}, {origin}{}. Callers: {} teachers sampled of {}, with {} classes and {} students.\n",
        e.location,
        if e.kept { ", kept" } else { "" },
        n(e.roster_teachers as u64),
        n(e.roster_teachers_in_tenant as u64),
        n(e.roster_classes as u64),
        n(e.roster_students as u64)
    );
    let _ = writeln!(
        md,
        "| scenario | pacing | achieved | answers | p50 | p90 | p99 | p99.9 | max | errors | server peak RSS |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let all: Vec<&ScenarioResult> = e
        .scenarios
        .iter()
        .chain(e.soak.as_ref().map(|s| &s.scenario))
        .collect();
    for s in &all {
        let errors = s.error_count() + s.not_sent;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}{} |",
            s.name,
            pacing(s),
            rate(s.achieved_rate),
            n(s.answered),
            ms(s.latency.p50),
            ms(s.latency.p90),
            ms(s.latency.p99),
            ms(s.latency.p999),
            ms(s.latency.max),
            if errors == 0 {
                "0".to_string()
            } else {
                format!("**{}**", n(errors))
            },
            mib(s.peak_rss_kib),
            if s.peak_is_scenario {
                ""
            } else {
                " (process peak)"
            }
        );
    }
    if let Some(mix) = e.scenario(MIX) {
        let _ = writeln!(md, "\nThe mix by request kind ({}):\n", pacing(mix));
        kinds_table(md, mix);
    }
    let failed: Vec<&&ScenarioResult> = all
        .iter()
        .filter(|s| !s.errors.is_empty() || s.not_sent > 0)
        .collect();
    if failed.is_empty() {
        let _ = writeln!(md, "\nErrors: none (every answer had an expected status).");
    } else {
        let _ = writeln!(md, "\nErrors:\n");
        for s in failed {
            for error in &s.errors {
                let example = error
                    .example
                    .as_ref()
                    .map(|b| format!(": `{}`", b.replace('`', "'").replace('\n', " ")))
                    .unwrap_or_default();
                let _ = writeln!(
                    md,
                    "- {}: {} — {} × {}{example}",
                    s.name,
                    error.kind.name(),
                    n(error.count),
                    error.what
                );
            }
            if s.not_sent > 0 {
                let _ = writeln!(
                    md,
                    "- {}: {} requests not sent (more than 30 s overdue: the server fell behind)",
                    s.name,
                    n(s.not_sent)
                );
            }
        }
    }
    if let Some(soak) = &e.soak {
        let _ = writeln!(
            md,
            "\nThe soak per {}-second window (peak RSS: the server's `VmHWM` in that window):\n",
            soak.window.as_secs()
        );
        let _ = writeln!(
            md,
            "| window | answers | p50 | p99 | max | server peak RSS |\n|---|---|---|---|---|---|"
        );
        for (i, w) in soak.windows.iter().enumerate() {
            let from = soak.window.as_secs() * i as u64;
            let _ = writeln!(
                md,
                "| {}–{} s | {} | {} | {} | {} | {} |",
                from,
                from + soak.window.as_secs(),
                n(w.answered),
                ms(w.latency.p50),
                ms(w.latency.p99),
                ms(w.latency.max),
                mib(w.peak_rss_kib)
            );
        }
    }
    if let Some(soak) = &e.soak
        && let (Some(first), Some(last)) = (soak.rss_samples.first(), soak.rss_samples.last())
    {
        let max = soak.rss_samples.iter().map(|(_, k)| *k).max().unwrap_or(0);
        let _ = writeln!(
            md,
            "\nThe server's resident size (`VmRSS`, sampled every 5 s, {} samples): {} at {:.0} s, {} at {:.0} s, {} at most.",
            soak.rss_samples.len(),
            mib(Some(first.1)),
            first.0,
            mib(Some(last.1)),
            last.0,
            mib(Some(max))
        );
    }
    if !e.server_warnings.is_empty() {
        let _ = writeln!(md, "\nThe server logged:\n");
        for line in &e.server_warnings {
            let _ = writeln!(md, "- `{}`", line.replace('`', "'"));
        }
    }
}

fn kinds_table(md: &mut String, s: &ScenarioResult) {
    let _ = writeln!(
        md,
        "| request | answers | p50 | p99 | max | statuses |\n|---|---|---|---|---|---|"
    );
    for k in &s.kinds {
        let statuses: Vec<String> = k
            .statuses
            .iter()
            .map(|(status, count)| format!("{status} × {}", n(*count)))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            k.kind.name(),
            n(k.latency.count),
            ms(k.latency.p50),
            ms(k.latency.p99),
            ms(k.latency.max),
            statuses.join(", ")
        );
    }
}

/// A few lines for the terminal.
pub fn summary(results: &ApiBenchResults) -> String {
    let mut out = format!("api benchmark, {} students:\n", n(results.students));
    for e in &results.engines {
        for s in e
            .scenarios
            .iter()
            .chain(e.soak.as_ref().map(|s| &s.scenario))
        {
            let _ = writeln!(
                out,
                "  {:<11} {:<36} {:>10}  p50 {:>9}  p99 {:>9}  max {:>9}  errors {}  peak RSS {}",
                e.name,
                s.name,
                rate(s.achieved_rate),
                ms(s.latency.p50),
                ms(s.latency.p99),
                ms(s.latency.max),
                s.error_count() + s.not_sent,
                mib(s.peak_rss_kib)
            );
        }
        for name in [READS, MIX, READ_SATURATION, SOAK] {
            let _ = writeln!(
                out,
                "  {:<11} target {:<30} {}",
                e.name,
                name,
                target_cell(name, e)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Sample;

    fn outcome() -> Outcome {
        let mut outcome = Outcome::default();
        let contacts = Kind::Contacts.index();
        let chats = Kind::ChatStart.index();
        for i in 0..100u32 {
            outcome.samples.push(Sample {
                micros: 1000 + i,
                kind: contacts,
                window: 0,
            });
        }
        outcome.samples.push(Sample {
            micros: 9000,
            kind: chats,
            window: 1,
        });
        outcome.statuses.insert((contacts, 200), 98);
        outcome.statuses.insert((contacts, 503), 2);
        outcome.statuses.insert((chats, 200), 1);
        outcome.failures.insert((chats, "timeout".into()), 3);
        outcome
            .examples
            .insert((contacts, 503), "{\"error\":{\"code\":\"busy\"}}".into());
        outcome.elapsed = Duration::from_millis(101);
        outcome.due = 104;
        outcome
    }

    fn options() -> RunOptions {
        RunOptions {
            pace: Pace::Open { rate: 1000.0 },
            connections: 8,
            window: Duration::from_secs(60),
            give_up_after: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn unexpected_statuses_and_missing_answers_are_errors() {
        let s = summarise(READS, &options(), &outcome(), Some(2048), true);
        assert_eq!(s.answered, 101);
        assert_eq!(s.error_count(), 5);
        let what: Vec<(Kind, &str, u64)> = s
            .errors
            .iter()
            .map(|e| (e.kind, e.what.as_str(), e.count))
            .collect();
        assert_eq!(
            what,
            vec![
                (Kind::Contacts, "HTTP 503", 2),
                (Kind::ChatStart, "timeout", 3)
            ]
        );
        assert!(s.errors[0].example.as_deref().unwrap().contains("busy"));
        // A chat start answered 200 (re-entered) is not an error.
        assert_eq!(s.kinds.len(), 2);
        assert_eq!(s.kinds[0].latency.p50, 1049);
        assert_eq!(s.latency.max, 9000);
        assert!((s.achieved_rate - 1000.0).abs() < 1e-6);
        assert!(!s.kept_up());
    }

    #[test]
    fn the_soak_compares_its_first_and_last_window() {
        let s = summarise(SOAK, &options(), &outcome(), None, true);
        let soak = soak_result(
            s,
            &outcome(),
            Duration::from_secs(60),
            vec![100 * 1024, 108 * 1024],
            vec![],
        );
        assert_eq!(soak.windows.len(), 2);
        assert_eq!(soak.windows[0].answered, 100);
        assert_eq!(soak.windows[1].latency.p99, 9000);
        let growth = soak.growth().unwrap();
        assert!((growth - 0.08).abs() < 1e-9, "{growth}");
    }

    #[test]
    fn formats_latencies() {
        assert_eq!(ms(1234), "1.23 ms");
        assert_eq!(ms(12_345), "12.3 ms");
        assert_eq!(ms(123_456), "123 ms");
        assert_eq!(ms(29_746_000), "29.7 s");
        assert_eq!(rate(4999.6), "5,000/s");
    }
}
