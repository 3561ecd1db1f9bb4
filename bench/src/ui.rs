//! What a benchmark shows while it runs: phase lines with a spinner on standard error
//! ([`Ui`]), and the import's own progress with the time each of its steps took ([`Steps`]).

use crate::measure::PhaseCost;
use crate::report;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parent_connection::sync::Progress;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Phase messages on standard error, with a spinner when it is a terminal.
pub struct Ui {
    /// The spinner line.
    pub bar: ProgressBar,
    started: Instant,
}

impl Ui {
    /// A spinner on standard error (drawn only on a terminal).
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        Self {
            bar,
            started: Instant::now(),
        }
    }

    /// One line of text, above the spinner.
    pub fn line(&self, text: &str) {
        self.bar.suspend(|| eprintln!("{text}"));
    }

    /// A new phase: its line (with the time since the start), and the spinner on it.
    pub fn start(&self, what: &str) {
        self.line(&format!(
            "[{:>7.1} s] {what}",
            self.started.elapsed().as_secs_f64()
        ));
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            self.bar.set_style(style);
        }
        self.bar.set_message(what.to_string());
        self.bar.reset_elapsed();
        self.bar.enable_steady_tick(Duration::from_millis(150));
    }

    /// The phase is over: its time and peak RSS.
    pub fn done(&self, cost: &PhaseCost) {
        self.bar.disable_steady_tick();
        self.line(&format!(
            "    done in {:.1} s, peak RSS {}",
            cost.wall.as_secs_f64(),
            report::mib(cost.peak_rss_kib)
        ));
    }

    /// Clears the spinner.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Receives the import's progress: draws it, and remembers when each step began.
pub struct Steps {
    bar: parent_connection::cli::progress::ImportBar,
    marks: Mutex<Vec<(String, Instant)>>,
}

impl Steps {
    /// Draws on `bar`; the clock starts now.
    pub fn new(bar: ProgressBar) -> Self {
        Self {
            bar: parent_connection::cli::progress::ImportBar::on(bar),
            marks: Mutex::new(vec![("opening".into(), Instant::now())]),
        }
    }

    fn mark(&self, name: &str) {
        if let Ok(mut marks) = self.marks.lock() {
            marks.push((name.to_string(), Instant::now()));
        }
    }

    /// Each step with its duration (the last one ends at `finish`).
    pub fn durations(&self) -> Vec<(String, Duration)> {
        let Ok(marks) = self.marks.lock() else {
            return vec![];
        };
        marks
            .windows(2)
            .map(|w| (w[0].0.clone(), w[1].1 - w[0].1))
            .filter(|(name, _)| name != "opening" && name != "finished")
            .collect()
    }
}

impl Progress for Steps {
    fn start(&self, total_bytes: u64) {
        self.mark("reading + staging");
        self.bar.start(total_bytes);
    }

    fn advance(&self, bytes: u64) {
        self.bar.advance(bytes);
    }

    fn phase(&self, name: &str) {
        self.mark(name);
        self.bar.phase(name);
    }

    fn finish(&self) {
        self.mark("finished");
    }
}
