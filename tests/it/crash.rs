//! Crash safety, the short version CI runs: a few trials of each operation on each engine
//! with the harness of `parent_connection_testkit::crash` (SIGKILL of the real binary at a
//! seeded point of an import, an approval through `serve`, a digest run and a dispatch to an
//! SMTP sink; then integrity, all-or-nothing, nothing lost, duplicates only in flight, and a
//! restart that finishes). The long runs and their figures are in RELIABILITY.md
//! ("Crash safety"); `CRASH_SEED` changes the kill points, `CRASH_TRIALS` their number.

use crate::support::{Backend, postgres_url};
use parent_connection_testkit::crash::{self, Engine, Operation, Options, Scale};

/// Trials per operation when `CRASH_TRIALS` is not set: SQLite, PostgreSQL (where each
/// trial's fresh database and the product's start cost seconds).
const TRIALS: (u64, u64) = (3, 1);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn trials(backend: Backend, operation: Operation) {
    let work = tempfile::tempdir().unwrap();
    let engine = match backend {
        Backend::Sqlite => Engine::Sqlite,
        Backend::Postgres => Engine::Postgres {
            admin_url: postgres_url().unwrap(),
        },
    };
    let seed = env_u64("CRASH_SEED", 20_261_205);
    let options = Options {
        product: env!("CARGO_BIN_EXE_parent-connection").into(),
        work: work.path().to_path_buf(),
        engine,
        seed,
        scale: Scale::SMALL,
        server: None,
        server_kill_every: 0,
    };
    let prepared = crash::prepare(&options, operation).await.unwrap();
    let mut findings = Vec::new();
    let default = match backend {
        Backend::Sqlite => TRIALS.0,
        Backend::Postgres => TRIALS.1,
    };
    for index in 0..env_u64("CRASH_TRIALS", default) {
        let trial = crash::trial(&options, &prepared, index).await;
        eprintln!("{trial:?}");
        if let Some(finding) = &trial.finding {
            findings.push(format!(
                "{} trial {index} (CRASH_SEED={seed}): {finding}",
                operation.name()
            ));
        }
    }
    crash::cleanup(&options, &prepared).await.unwrap();
    assert!(findings.is_empty(), "{findings:#?}");
}

async fn import_killed(backend: Backend) {
    trials(backend, Operation::Import).await;
}

async fn approval_killed(backend: Backend) {
    trials(backend, Operation::Approval).await;
}

async fn digest_run_killed(backend: Backend) {
    trials(backend, Operation::Digest).await;
}

async fn dispatch_killed(backend: Backend) {
    trials(backend, Operation::Dispatch).await;
}

crate::db_tests!(
    import_killed,
    approval_killed,
    digest_run_killed,
    dispatch_killed
);
