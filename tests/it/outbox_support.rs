//! Real delivery peers for the outbox tests: an `aiosmtpd` process (a real SMTP server
//! from PyPI, writing a Maildir), a scripted SMTP responder for 4xx/5xx answers (the
//! testkit's SMTP sink, which the dispatch benchmark uses too), and a wiremock HTTP server
//! standing in for the SMS gateway.

#![allow(dead_code)]

use parent_connection_testkit::smtp::{Answers, Sink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    parent_connection_testkit::free_port().expect("a free port")
}

/// An aiosmtpd process writing every message it accepts into a Maildir.
pub struct Smtp {
    pub port: u16,
    pub maildir: tempfile::TempDir,
    child: Child,
}

impl Smtp {
    /// Starts aiosmtpd, or panics with how to install it (scripts/test.sh installs it).
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts aiosmtpd requiring STARTTLS with `cert` / `key` (PEM files).
    pub fn start_tls(cert: &Path, key: &Path) -> Self {
        Self::start_with(&[
            "--tlscert".into(),
            cert.display().to_string(),
            "--tlskey".into(),
            key.display().to_string(),
        ])
    }

    fn start_with(extra: &[String]) -> Self {
        let maildir = tempfile::tempdir().unwrap();
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.path().join(sub)).unwrap();
        }
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(extra)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "aiosmtpd did not start on port {port}: install it with `python3 -m pip install aiosmtpd`"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            port,
            maildir,
            child,
        }
    }

    /// `MAIL_URL` of this server.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// Every delivered message, raw.
    pub fn messages(&self) -> Vec<String> {
        read_dir_texts(&self.maildir.path().join("new"))
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of every file in `dir`, sorted by name.
pub fn read_dir_texts(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

/// A header of a raw message (first occurrence, unfolded).
pub fn header(message: &str, name: &str) -> Option<String> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    let mut lines = message.lines().peekable();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            return None;
        }
        if line.to_ascii_lowercase().starts_with(&prefix) {
            let mut value = line[prefix.len()..].trim().to_string();
            while let Some(next) = lines.peek() {
                if next.starts_with(' ') || next.starts_with('\t') {
                    value.push(' ');
                    value.push_str(next.trim());
                    lines.next();
                } else {
                    break;
                }
            }
            return Some(value);
        }
    }
    None
}

/// A scripted SMTP server on loopback: answers `DATA`'s end with the next reply of
/// `replies` (then 250 forever), counting the messages it accepted.
pub struct ScriptedSmtp {
    pub port: u16,
    pub accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    sink: Sink,
}

impl ScriptedSmtp {
    /// Starts the responder.
    pub async fn start(replies: Vec<&'static str>) -> Self {
        let sink = Sink::start(Answers::script(replies))
            .await
            .expect("the SMTP sink starts");
        Self {
            port: sink.port(),
            accepted: sink.accepted(),
            sink,
        }
    }

    /// `MAIL_URL` of this server.
    pub fn url(&self) -> String {
        self.sink.url()
    }
}

/// A test CA and a `localhost` server certificate it signed (PEM files in `dir`):
/// `(ca, cert, key)`. Made with the `openssl` command.
pub fn test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}
