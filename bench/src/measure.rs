//! Measuring a phase (wall time, peak resident memory) and describing the machine.

use std::time::{Duration, Instant};

/// Peak-memory tracking for one phase, from Linux's `/proc/self` (no-op elsewhere).
///
/// `VmHWM` (the resident-set high-water mark) is reset to the current resident size by
/// writing `5` to `/proc/self/clear_refs` when the phase starts, and read when it ends.
pub struct PhaseMeter {
    started: Instant,
    start_rss_kib: Option<u64>,
    reset: bool,
}

/// What a phase cost.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct PhaseCost {
    /// Wall-clock time.
    pub wall: Duration,
    /// Peak resident memory of this process during the phase, KiB (None when unknown).
    pub peak_rss_kib: Option<u64>,
    /// Resident memory when the phase started, KiB.
    pub start_rss_kib: Option<u64>,
    /// False when the high-water mark could not be reset, so the peak may be an earlier one.
    pub peak_is_per_phase: bool,
}

impl PhaseMeter {
    /// Resets the high-water mark and starts the clock.
    pub fn start() -> Self {
        let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        Self {
            start_rss_kib: status_kib("VmRSS"),
            reset,
            started: Instant::now(),
        }
    }

    /// Stops the clock and reads the high-water mark.
    pub fn stop(self) -> PhaseCost {
        PhaseCost {
            wall: self.started.elapsed(),
            peak_rss_kib: status_kib("VmHWM"),
            start_rss_kib: self.start_rss_kib,
            peak_is_per_phase: self.reset,
        }
    }
}

/// The high-water mark of this process's resident memory, KiB (Linux).
pub fn peak_rss_kib() -> Option<u64> {
    status_kib("VmHWM")
}

/// True when per-phase peak memory can be measured in-process on this system.
pub fn can_reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok() && status_kib("VmHWM").is_some()
}

/// A `kB` line of `/proc/self/status`, e.g. `VmHWM`.
fn status_kib(key: &str) -> Option<u64> {
    kib_line(&std::fs::read_to_string("/proc/self/status").ok()?, key)
}

/// The `kB` line `key` of a `/proc/PID/status` text.
pub fn kib_line(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// The machine the benchmark ran on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Machine {
    /// Logical CPUs available to this process.
    pub cpus: usize,
    /// CPU model name.
    pub cpu_model: String,
    /// Total memory, bytes (0 when unknown).
    pub memory_bytes: u64,
    /// Operating system and kernel.
    pub os: String,
}

impl Machine {
    /// Reads `/proc/cpuinfo`, `/proc/meminfo` and the kernel version (Linux), with fallbacks.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_bytes = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory_bytes,
            os: format!("{} {}", std::env::consts::OS, kernel.trim())
                .trim()
                .to_string(),
        }
    }
}

/// The 1-, 5- and 15-minute load averages (Linux), e.g. `0.52 0.61 0.70`.
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The git commit of the working tree (`abc1234`, with `+changes` when the code differs from
/// it), or `unknown` outside a repository.
pub fn git_commit() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short", "HEAD"]) {
        Some(commit) if !commit.is_empty() => {
            let changed = run(&[
                "status",
                "--porcelain",
                "--",
                "src",
                "migrations",
                "Cargo.toml",
                "Cargo.lock",
                "config",
            ]);
            if changed.is_some_and(|c| !c.is_empty()) {
                format!("{commit}+changes")
            } else {
                commit
            }
        }
        _ => "unknown".into(),
    }
}

/// The "Machine" and "Build" lines every benchmark section starts with.
pub fn machine_lines(machine: &Machine) -> String {
    format!(
        "- **Machine:** {} CPU(s), {}, {:.1} GiB RAM, {}\n- **Build:** {}\n",
        machine.cpus,
        machine.cpu_model,
        machine.memory_bytes as f64 / (1u64 << 30) as f64,
        machine.os,
        if cfg!(debug_assertions) {
            "debug (numbers are not representative)"
        } else {
            "release"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_phase() {
        let meter = PhaseMeter::start();
        let block = vec![1u8; 8 << 20];
        std::hint::black_box(&block);
        let cost = meter.stop();
        if cfg!(target_os = "linux") {
            assert!(cost.peak_rss_kib.unwrap_or(0) >= 8 * 1024, "{cost:?}");
        }
        assert!(!Machine::detect().cpu_model.is_empty());
    }
}
