//! The import progress bar (drawn on standard error only when it is a terminal).

use crate::sync::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A byte-based bar over the files of an import, then a spinner for the database phases.
pub struct ImportBar {
    bar: ProgressBar,
}

impl ImportBar {
    /// A hidden-when-not-a-terminal bar.
    pub fn new() -> Self {
        Self::on(ProgressBar::with_draw_target(
            Some(0),
            ProgressDrawTarget::stderr(),
        ))
    }

    /// Draws on an existing bar (e.g. the benchmark's).
    pub fn on(bar: ProgressBar) -> Self {
        Self { bar }
    }
}

impl Default for ImportBar {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for ImportBar {
    fn start(&self, total_bytes: u64) {
        self.bar.set_length(total_bytes);
        self.bar.set_position(0);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:10} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        ) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_message("reading");
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn phase(&self, name: &str) {
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            self.bar.set_style(style);
        }
        self.bar.set_message(name.to_string());
        self.bar
            .enable_steady_tick(std::time::Duration::from_millis(120));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
