//! A private PostgreSQL server for the trials that kill the server itself: its own cluster
//! (`initdb` into a folder of the work folder), on its own loopback port, started and
//! stopped by the harness, never a shared server. Needs Debian's `postgresql` binaries; as
//! root the cluster runs as the `postgres` user.

use anyhow::{Context, Result, bail, ensure};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running private cluster; stopped when dropped.
#[derive(Debug)]
pub struct PrivateServer {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// The newest `/usr/lib/postgresql/<version>/bin`.
fn bin_dir() -> Result<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no /usr/lib/postgresql: apt-get install postgresql")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .context("no initdb under /usr/lib/postgresql")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PrivateServer {
    /// Creates a cluster under `work` and starts it on a free loopback port.
    pub fn start(work: &Path) -> Result<Self> {
        let root = work.join("pg-private");
        super::db::remove_dir(&root)?;
        std::fs::create_dir_all(&root)?;
        let server = Self {
            bin: bin_dir()?,
            data: root.join("data"),
            port: crate::free_port()?,
            as_postgres: is_root(),
        };
        if server.as_postgres {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&root)
                .status()?;
            ensure!(
                status.success(),
                "cannot give {} to postgres",
                root.display()
            );
        }
        let data = server.data.display().to_string();
        server.tool(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "crash",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        server.up()?;
        Ok(server)
    }

    fn tool(&self, name: &str, args: &[&str]) -> Result<()> {
        let program = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let output = command
            .args(args)
            .output()
            .with_context(|| format!("cannot run {name}"))?;
        if !output.status.success() {
            bail!(
                "{name} failed: {}{}",
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// Starts the server and waits until it accepts connections.
    pub fn up(&self) -> Result<()> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=on",
            self.port,
            self.data
                .parent()
                .map_or("/tmp".into(), |p| p.display().to_string())
        );
        let data = self.data.display().to_string();
        let log = self.data.with_file_name("server.log").display().to_string();
        self.tool(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start",
            ],
        )
    }

    /// Crashes the server: `pg_ctl stop -m immediate` (every server process quits at once,
    /// with no checkpoint; the next start recovers from the write-ahead log).
    pub fn crash(&self) -> Result<()> {
        let data = self.data.display().to_string();
        self.tool("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
    }

    /// The admin URL (the cluster's superuser, trusted on loopback).
    pub fn admin_url(&self) -> String {
        format!("postgres://crash@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let _ = self.tool("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
        if let Some(root) = self.data.parent() {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}
