//! The product binary, `parent-connection`, that the benchmarks run as child processes
//! (`api` starts `serve`; `digest` runs `digest run` and `dispatch --once`), so what they
//! measure is the shipped program itself.

use crate::measure;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Name of the product's executable.
const PRODUCT: &str = "parent-connection";

/// A `parent-connection` executable that exists.
#[derive(Debug, Clone)]
pub struct ProductBin(PathBuf);

impl ProductBin {
    /// `explicit` (`--product-bin` / `PC_BIN`), or else the `parent-connection` next to this
    /// program (cargo puts both in the same target folder); an error saying how to get one
    /// when there is none.
    pub fn locate(explicit: Option<&Path>) -> Result<Self> {
        let path = match explicit {
            Some(path) => path.to_path_buf(),
            None => beside_this_program()?,
        };
        if !path.is_file() {
            bail!(
                "the product binary {} does not exist: build it with `cargo build --release --workspace` \
                 (it goes next to parent-connection-bench), or name it with --product-bin FILE or PC_BIN",
                path.display()
            );
        }
        Ok(Self(path))
    }

    /// A command that runs the product.
    pub fn command(&self) -> Command {
        Command::new(&self.0)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// A finished child process of the product.
pub struct ChildRun {
    /// Wall time.
    pub seconds: f64,
    /// Its standard output.
    pub stdout: String,
    /// Its own peak RSS (KiB).
    pub peak_rss_kib: u64,
}

impl ProductBin {
    /// Runs the product with `args` and `env` added to the environment: its wall time, its
    /// standard output and its own peak RSS (`VmHWM`, read every 20 ms while it runs: the
    /// kernel's figure for a reaped child also counts the parent's memory at the spawn).
    pub async fn run_measured(&self, args: &[&str], env: &[(&str, String)]) -> Result<ChildRun> {
        let mut command = self.command();
        command
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        let what = args.join(" ");
        tokio::task::spawn_blocking(move || -> Result<ChildRun> {
            use std::io::Read as _;
            let started = Instant::now();
            let mut process = command
                .spawn()
                .with_context(|| format!("cannot start {what}"))?;
            let status_file = format!("/proc/{}/status", process.id());
            let mut peak_rss_kib = 0;
            // The pipe is drained beside the polling, so a long report cannot block the child.
            let mut pipe = process.stdout.take().context("no stdout")?;
            let reader = std::thread::spawn(move || {
                let mut stdout = String::new();
                pipe.read_to_string(&mut stdout).map(|_| stdout)
            });
            let status = loop {
                if let Some(hwm) = std::fs::read_to_string(&status_file)
                    .ok()
                    .and_then(|text| measure::kib_line(&text, "VmHWM"))
                {
                    peak_rss_kib = peak_rss_kib.max(hwm);
                }
                if let Some(status) = process.try_wait()? {
                    break status;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            };
            let seconds = started.elapsed().as_secs_f64();
            let stdout = reader
                .join()
                .map_err(|_| anyhow::anyhow!("the output reader stopped"))??;
            anyhow::ensure!(status.success(), "{what} failed ({status})");
            Ok(ChildRun {
                seconds,
                stdout,
                peak_rss_kib,
            })
        })
        .await?
    }
}

/// `parent-connection` in the folder of this program's executable.
fn beside_this_program() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this program's executable")?;
    let dir = exe
        .parent()
        .context("this program's executable has no folder")?;
    Ok(dir.join(format!("{PRODUCT}{}", std::env::consts::EXE_SUFFIX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("parent-connection");
        let error = ProductBin::locate(Some(&missing)).unwrap_err().to_string();
        assert!(error.contains("does not exist"), "{error}");
        assert!(error.contains("--product-bin"), "{error}");
        std::fs::write(&missing, "").unwrap();
        assert_eq!(ProductBin::locate(Some(&missing)).unwrap().path(), missing);
    }

    #[test]
    fn the_default_is_next_to_this_program() {
        let path = beside_this_program().unwrap();
        assert_eq!(path.file_name().unwrap(), "parent-connection");
        assert_eq!(path.parent(), std::env::current_exe().unwrap().parent());
    }
}
