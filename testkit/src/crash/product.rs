//! The product binary run as the harness's child process: one-shot commands, `serve` on a
//! loopback port, and the few HTTP requests the approval trial sends to it.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// A development signing key for the tokens the approval trial mints (never a real key).
const JWT_SECRET: &str = "crash-harness-development-key-0123456789abcdef-0123456789abcdef";

/// The privacy hash key of every harness database (PostgreSQL needs one; SQLite takes it).
const PRIVACY_KEY: &str = "0c7a5b1e9d3f2a4c6e8b0d1f3a5c7e9b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c";

/// How to run `parent-connection` against one database.
#[derive(Debug, Clone)]
pub struct Product {
    bin: PathBuf,
    env: Vec<(String, String)>,
}

impl Product {
    /// The product at `bin` on the database `url`, mail to `mail_url`.
    pub fn new(bin: PathBuf, url: &str, mail_url: &str) -> Self {
        let env = [
            ("DATABASE_URL", url),
            ("MAIL_URL", mail_url),
            ("JWT_SECRET", JWT_SECRET),
            ("PARENT_CONNECTION__PRIVACY__HASH_KEY", PRIVACY_KEY),
            ("PARENT_CONNECTION__AUTH__DEVELOPMENT", "true"),
            ("PARENT_CONNECTION__MAIL__MESSAGE_ID_DOMAIN", "crash.test"),
            // The trial decides what runs: no schedule, no dispatcher inside `serve`.
            ("PARENT_CONNECTION__DIGEST__SCHEDULE_IN_SERVE", "false"),
            ("PARENT_CONNECTION__OUTBOX__DISPATCH_IN_SERVE", "false"),
            // Several rounds per dispatch (more kill points between them), and the claims
            // of a killed dispatcher due again soon after.
            ("PARENT_CONNECTION__OUTBOX__BATCH_SIZE", "50"),
            ("PARENT_CONNECTION__OUTBOX__LEASE_SECONDS", "3"),
            ("PARENT_CONNECTION__LOG__LEVEL", "error"),
            ("RUST_LOG", "error"),
        ];
        Self {
            bin,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// A command of the product with the harness's environment (and none of the caller's
    /// own product settings).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        for (key, _) in std::env::vars() {
            if key.starts_with("PARENT_CONNECTION") || key == "PC_CONFIG" {
                command.env_remove(&key);
            }
        }
        command
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs `args` to the end; its standard output, or an error with its standard error.
    pub async fn run(&self, args: &[&str]) -> Result<String> {
        let output = self
            .command(args)
            .output()
            .await
            .with_context(|| format!("cannot start parent-connection {}", args.join(" ")))?;
        if !output.status.success() {
            bail!(
                "parent-connection {} failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Starts `args` without waiting.
    pub fn spawn(&self, args: &[&str]) -> Result<Child> {
        // CRASH_LOG=1 shows the product's log (with its log level) on this standard error.
        let log = std::env::var_os("CRASH_LOG").is_some();
        self.command(args)
            .stdout(Stdio::null())
            .stderr(if log { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .with_context(|| format!("cannot start parent-connection {}", args.join(" ")))
    }

    /// Starts `serve` on a free loopback port and waits (with a deadline) until `/healthz`
    /// answers.
    pub async fn serve(&self) -> Result<Server> {
        let port = crate::free_port()?;
        let bind = format!("127.0.0.1:{port}");
        let mut child = self.spawn(&["serve", "--bind", &bind])?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = http(port, "GET", "/healthz", None, "").await {
                return Ok(Server { child, port });
            }
            if let Some(status) = child.try_wait()? {
                bail!("serve exited before it answered ({status})");
            }
            if Instant::now() > deadline {
                bail!("serve did not answer /healthz within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A running `serve`.
#[derive(Debug)]
pub struct Server {
    /// The process.
    pub child: Child,
    /// Its loopback port.
    pub port: u16,
}

/// One HTTP/1.1 request on a fresh loopback connection: the status and the body.
pub async fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Result<(u16, String)> {
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status line")?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

/// SIGKILLs `child` (a no-op when it has exited) and reaps it; whether it was still running.
pub async fn kill(child: &mut Child) -> Result<bool> {
    let running = child.try_wait()?.is_none();
    if running {
        child.start_kill()?;
    }
    child.wait().await?;
    Ok(running)
}
