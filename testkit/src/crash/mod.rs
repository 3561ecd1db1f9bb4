//! The crash harness: it SIGKILLs the product at a seeded random point of an operation and
//! checks what the kill left behind, then lets a restarted process finish the work.
//!
//! Four operations, each on a database prepared once as a template and copied per trial:
//!
//! - [`Operation::Import`]: `parent-connection import --force` of a re-sync snapshot over a
//!   generated district. The contacts and links must be exactly the before or the after
//!   set, with the `sync_runs` row to match.
//! - [`Operation::Approval`]: `serve`, and an admin approving pending contact edits one
//!   after another through the API. Each request must be approved with its change applied,
//!   or pending with the contact unchanged.
//! - [`Operation::Digest`]: `parent-connection digest run`. The per-guardian deliveries must
//!   be a prefix (in contact order) of the full run's, never twice for a guardian, each
//!   with at most one outbox row.
//! - [`Operation::Dispatch`]: `parent-connection dispatch --once` to an SMTP sink. Every row
//!   marked sent must be at the sink; the sink may hold twice only messages whose send was
//!   in flight (at the sink, not yet marked sent) when the process died.
//!
//! Every trial checks the database's integrity (`PRAGMA integrity_check` on SQLite), then
//! reruns the operation (or a new `serve`) and checks that it finished the work. The kill
//! point is uniform over the operation's measured duration; trial `i` of seed `s` draws it
//! from `rng::mix(s, operation, i)`, so a run is reproduced by its seed.

mod checks;
pub mod db;
pub mod pgserver;
pub mod product;

use crate::rng::{SplitMix64, mix};
use crate::smtp::Sink;
use anyhow::{Context, Result};
pub use checks::Reference;
use db::Databases;
pub use db::Engine;
use product::Product;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An operation the harness kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// An SDS import (a re-sync over an imported district).
    Import,
    /// Contact-edit approvals through a running `serve`.
    Approval,
    /// A weekly digest run.
    Digest,
    /// An outbox dispatch to SMTP.
    Dispatch,
}

impl Operation {
    /// All four, in the order the harness runs them.
    pub const ALL: [Operation; 4] = [Self::Import, Self::Approval, Self::Digest, Self::Dispatch];

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Import => "import",
            Self::Approval => "approval",
            Self::Digest => "digest",
            Self::Dispatch => "dispatch",
        }
    }

    /// The operation named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    fn tag(self) -> u64 {
        self as u64 + 1
    }
}

/// How big the prepared data is.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Students of the imported district.
    pub students: u64,
    /// Pending requests the approval trial decides.
    pub requests: u64,
    /// Guardians who get a digest (and so messages to dispatch).
    pub guardians: u64,
}

impl Scale {
    /// The harness's default: a few seconds per operation on 2 cores (release build).
    pub const DEFAULT: Scale = Scale {
        students: 3000,
        requests: 30,
        guardians: 2000,
    };

    /// A few hundred milliseconds per operation, for CI.
    pub const SMALL: Scale = Scale {
        students: 300,
        requests: 8,
        guardians: 200,
    };
}

/// What a crash run works with.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `parent-connection` binary.
    pub product: PathBuf,
    /// A folder for snapshots and SQLite files (the harness's own sub-folders only).
    pub work: PathBuf,
    /// The engine.
    pub engine: Engine,
    /// The run's seed.
    pub seed: u64,
    /// Data sizes.
    pub scale: Scale,
    /// A private server whose trials number `server_kill_every`, `2·…`, … crash the server
    /// instead of the process (PostgreSQL only).
    pub server: Option<std::sync::Arc<pgserver::PrivateServer>>,
    /// See `server` (0: never).
    pub server_kill_every: u64,
}

/// An operation ready for trials: its template database and what a whole run does.
#[derive(Debug)]
pub struct Prepared {
    /// The operation.
    pub operation: Operation,
    /// How long one uninterrupted run took: the kill falls within it.
    pub window: Duration,
    /// What the checks compare with.
    pub reference: Reference,
    template: String,
}

/// What one trial saw.
#[derive(Debug, Clone)]
pub struct Trial {
    /// The operation.
    pub operation: Operation,
    /// Trial number within the run.
    pub index: u64,
    /// The trial's own seed (`rng::mix(run seed, operation, index)`).
    pub seed: u64,
    /// When the kill came, after the start.
    pub delay: Duration,
    /// Whether the process was still working when killed (else it had finished).
    pub killed_running: bool,
    /// Whether the database server was crashed (instead of the process).
    pub server_killed: bool,
    /// What the kill left: `before`, `after`, or `partial N/M` (a prefix or some decided).
    pub state: String,
    /// Messages at the sink but not yet marked sent when killed (dispatch).
    pub in_flight: u64,
    /// Messages the sink holds twice at the end (dispatch).
    pub duplicates: u64,
    /// An invariant that failed, or the harness error that stopped the trial.
    pub finding: Option<String>,
}

/// Prepares `operation`'s template and measures one uninterrupted run.
pub async fn prepare(options: &Options, operation: Operation) -> Result<Prepared> {
    std::fs::create_dir_all(&options.work)?;
    let dbs = Databases::new(options.engine.clone(), &options.work);
    let template = format!("{}_tpl", operation.name());
    let (window, reference) = checks::prepare(options, &dbs, operation, &template)
        .await
        .with_context(|| format!("cannot prepare the {} trials", operation.name()))?;
    Ok(Prepared {
        operation,
        window,
        reference,
        template,
    })
}

/// Runs trial `index` of `prepared`: copy the template, start, kill, check, finish, check.
pub async fn trial(options: &Options, prepared: &Prepared, index: u64) -> Trial {
    let operation = prepared.operation;
    let seed = mix(options.seed, operation.tag(), index);
    // Up to a tenth past the measured end: some kills come after the work is done.
    let window = prepared.window.as_millis() as u64;
    let delay = Duration::from_millis(SplitMix64::new(seed).below(window + window / 10 + 1));
    let mut trial = Trial {
        operation,
        index,
        seed,
        delay,
        killed_running: false,
        server_killed: false,
        state: String::new(),
        in_flight: 0,
        duplicates: 0,
        finding: None,
    };
    let dbs = Databases::new(options.engine.clone(), &options.work);
    let name = format!("{}_trial", operation.name());
    let server = options.server.as_deref().filter(|_| {
        options.server_kill_every > 0 && (index + 1).is_multiple_of(options.server_kill_every)
    });
    trial.server_killed = server.is_some();
    let outcome = async {
        let url = dbs.copy(&prepared.template, &name).await?;
        let sink = Sink::accept_all().await?;
        let product = Product::new(options.product.clone(), &url, &sink.url());
        checks::run_trial(&product, &url, &sink, prepared, server, &mut trial).await
    }
    .await;
    if let Err(error) = outcome {
        trial.finding = Some(format!("{error:#}"));
    }
    if let Err(error) = dbs.drop(&name).await {
        trial
            .finding
            .get_or_insert(format!("cannot drop the trial database: {error:#}"));
    }
    trial
}

/// Removes `prepared`'s template.
pub async fn cleanup(options: &Options, prepared: &Prepared) -> Result<()> {
    Databases::new(options.engine.clone(), &options.work)
        .drop(&prepared.template)
        .await
}

/// What the trials of one operation came to.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Trials run.
    pub trials: u64,
    /// Trials whose process was still working when killed.
    pub killed_running: u64,
    /// Trials that crashed the database server instead.
    pub server_killed: u64,
    /// Kills that left the before state.
    pub before: u64,
    /// Kills that left the after state.
    pub after: u64,
    /// Kills that left a consistent part (a digest prefix, some requests decided, some
    /// messages sent).
    pub partial: u64,
    /// Largest number of messages in flight at a kill.
    pub max_in_flight: u64,
    /// Messages sent twice, over all trials (each one in flight at its kill).
    pub duplicates: u64,
    /// Trials with a finding, with their seeds.
    pub findings: Vec<Trial>,
}

impl Summary {
    /// Adds one trial.
    pub fn add(&mut self, trial: &Trial) {
        self.trials += 1;
        self.killed_running += u64::from(trial.killed_running);
        self.server_killed += u64::from(trial.server_killed);
        match trial.state.split(' ').next() {
            Some("before") => self.before += 1,
            Some("after") => self.after += 1,
            Some("partial") => self.partial += 1,
            _ => {}
        }
        self.max_in_flight = self.max_in_flight.max(trial.in_flight);
        self.duplicates += trial.duplicates;
        if trial.finding.is_some() {
            self.findings.push(trial.clone());
        }
    }
}

/// A work folder under the system's temporary folder for this process.
pub fn default_work_dir() -> PathBuf {
    std::env::temp_dir().join(format!("parent-connection-crash-{}", std::process::id()))
}

/// Removes the work folder (snapshots and SQLite files).
pub fn remove_work(work: &Path) -> Result<()> {
    db::remove_dir(work)
}
