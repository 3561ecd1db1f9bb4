//! How many cases a target runs, its seeded runner, and the memory bound it asserts.

use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::cell::RefCell;

/// Cases per target: `FUZZ_CASES`, else the target's CI default.
pub fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(default)
}

/// A runner of `cases(default)` cases from the seed `FUZZ_SEED` (fixed by default, so a CI
/// failure reproduces), nothing persisted, shrinking bounded (an input can be an import).
pub fn runner(default: u32) -> TestRunner {
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(20);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases: cases(default),
        failure_persistence: None,
        max_shrink_iters: 200,
        max_shrink_time: 120_000,
        max_global_rejects: 1_000_000,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// A runtime for the targets that drive the service (a test drives it from a plain
/// `#[test]`, so that proptest's runner can call into it case by case).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A memory bound: at most `fixed` bytes plus `per_input_byte` times the input's size.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// Bytes allowed whatever the input.
    pub fixed: usize,
    /// Bytes allowed per byte of input.
    pub per_input_byte: usize,
}

impl Bound {
    /// Fails the case when `peak` bytes for an input of `input` bytes is over the bound.
    pub fn check(&self, peak: usize, input: usize) -> Result<(), TestCaseError> {
        let allowed = self.fixed + self.per_input_byte * input;
        if peak > allowed {
            return Err(TestCaseError::fail(format!(
                "{peak} bytes allocated for an input of {input} bytes: over the bound of {allowed}"
            )));
        }
        Ok(())
    }
}

/// What a target saw, printed at its end (the figures of RELIABILITY.md).
#[derive(Debug, Default)]
pub struct Tally {
    /// Cases run.
    pub cases: u64,
    /// Bytes of input, all cases.
    pub input_bytes: u64,
    /// Largest input.
    pub largest_input: usize,
    /// Largest peak allocation of one case.
    pub largest_peak: usize,
    /// Outcomes by name (`ok`, an error code, …).
    pub outcomes: std::collections::BTreeMap<String, u64>,
}

impl Tally {
    /// Records one case.
    pub fn see(cell: &RefCell<Self>, input: usize, peak: usize, outcome: &str) {
        let mut tally = cell.borrow_mut();
        tally.cases += 1;
        tally.input_bytes += input as u64;
        tally.largest_input = tally.largest_input.max(input);
        tally.largest_peak = tally.largest_peak.max(peak);
        *tally.outcomes.entry(outcome.to_string()).or_default() += 1;
    }

    /// Prints the summary line of `target` (shown with `--nocapture`).
    pub fn print(cell: &RefCell<Self>, target: &str) {
        let tally = cell.borrow();
        let mut outcomes: Vec<_> = tally.outcomes.iter().collect();
        outcomes.sort_by(|a, b| b.1.cmp(a.1));
        let top: Vec<String> = outcomes
            .iter()
            .take(8)
            .map(|(name, n)| format!("{name}={n}"))
            .collect();
        println!(
            "fuzz {target}: {} cases, {} input bytes (largest {}), largest peak allocation {} bytes; outcomes: {}",
            tally.cases,
            tally.input_bytes,
            tally.largest_input,
            tally.largest_peak,
            top.join(" ")
        );
    }
}

/// Runs `runner` over `strategy` with `test`, panicking with the (shrunk) failing input.
pub fn run<S: proptest::strategy::Strategy>(
    mut runner: TestRunner,
    strategy: &S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    if let Err(e) = runner.run(strategy, test) {
        panic!("{e}");
    }
}

/// True when `code` is a stable snake_case code.
pub fn is_code(code: &str) -> bool {
    !code.is_empty()
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
