//! No secret in the logs (issue 19, item 4): the real binary runs `serve` (with the
//! dispatcher sending an email over STARTTLS with SMTP authentication and a text through the
//! SMS gateway), the CLI (`token`, `import`, `oneroster connect`, `sync oneroster`) and the SMS
//! webhook, all at debug level with known secrets and a guardian's email and phone; every
//! log line is scanned: no secret or bearer token at any level, no contact email or phone at
//! info level and above.

use crate::oneroster_server::{CLIENT_ID, CLIENT_SECRET, Provider, district};
use crate::outbox_support::{free_port, read_dir_texts, test_certificates};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const JWT_SECRET: &str = "log-scan-jwt-secret-7f3a9c0e5b1d2f4a6c8e";
const SMTP_PASSWORD: &str = "log-scan-smtp-password-4e2b";
const SMS_AUTH_TOKEN: &str = "log-scan-sms-auth-token-9d1c";
const WEBHOOK_SECRET: &str = "log-scan-webhook-secret-3a7f";
const PRIVACY_KEY: &str = "5a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
const ONEROSTER_KEY: &str = "6b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a";
/// What the fixture holds of two guardians (par-1 by email, par-2 by text).
const CONTACT_DATA: [&str; 6] = [
    "linda.ng@example.com",
    "tom.ng@example.com",
    "2025550143",
    "2025550177",
    "555-0143",
    "555 0177",
];

/// An SMTP server requiring STARTTLS and accepting any AUTH (aiosmtpd with an
/// authenticator), writing what it accepts into a Maildir.
struct AuthSmtp {
    port: u16,
    maildir: tempfile::TempDir,
    child: Child,
}

impl AuthSmtp {
    fn start(cert: &Path, key: &Path) -> Self {
        let maildir = tempfile::tempdir().unwrap();
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.path().join(sub)).unwrap();
        }
        let port = free_port();
        let script = r#"
import signal, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult
port, cert, key, folder = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
def accept(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=True)
controller = Controller(Mailbox(folder), hostname="127.0.0.1", port=port,
    tls_context=context, require_starttls=True, authenticator=accept,
    auth_require_tls=True)
controller.start()
signal.sigwait([signal.SIGTERM, signal.SIGINT])
"#;
        let child = Command::new("python3")
            .args(["-c", script, &port.to_string()])
            .arg(cert)
            .arg(key)
            .arg(maildir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "aiosmtpd did not start: install it with `python3 -m pip install aiosmtpd`"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            port,
            maildir,
            child,
        }
    }
}

impl Drop for AuthSmtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment every process of the test shares.
struct Setup {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Setup {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_parent-connection"));
        command.args(args).current_dir(self.dir.path());
        for (name, _) in std::env::vars() {
            if name.starts_with("PARENT_CONNECTION") || name == "RUST_LOG" {
                command.env_remove(name);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    /// Runs a CLI command to its end; returns its standard output and keeps its log
    /// (standard error).
    fn cli(&self, args: &[&str], stdin: &str, logs: &mut Vec<String>) -> String {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        assert!(output.status.success(), "{args:?}: {stderr}");
        logs.extend(stderr.lines().map(str::to_string));
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

/// The level of a log line: JSON lines carry it; any other line counts as INFO.
fn level(line: &str) -> String {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v["level"].as_str().map(str::to_string))
        .unwrap_or_else(|| "INFO".into())
}

/// Waits up to 30 s for `done`; false when it never came.
async fn poll_until(mut done: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

/// The warnings and errors of a log file, for a failure message.
fn problems(log: &Path) -> String {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| matches!(level(l).as_str(), "WARN" | "ERROR") || !l.starts_with('{'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_token_or_contact_data_reaches_the_logs() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_certificates(certs.path());
    let smtp = AuthSmtp::start(&cert, &key);
    let gateway = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("/Messages.json$"))
        .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"sid":"SM1"}"#))
        .mount(&gateway)
        .await;
    let provider = Provider::start(district()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let env: Vec<(String, String)> = [
        (
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.path().join("pc.db").display()),
        ),
        ("RUST_LOG", "debug".into()),
        ("PARENT_CONNECTION__LOG__FORMAT", "json".into()),
        ("PARENT_CONNECTION__AUTH__DEVELOPMENT", "true".into()),
        ("JWT_SECRET", JWT_SECRET.into()),
        (
            "MAIL_URL",
            format!(
                "smtp://mailer:{SMTP_PASSWORD}@localhost:{}?tls=required",
                smtp.port
            ),
        ),
        (
            "PARENT_CONNECTION__MAIL__TLS_ROOT_CERTIFICATE",
            ca.display().to_string(),
        ),
        // Credentials in the URL too: the gateway's description must not show them.
        (
            "SMS_URL",
            gateway
                .uri()
                .replace("http://", &format!("http://AC0123:{SMS_AUTH_TOKEN}@")),
        ),
        ("PARENT_CONNECTION__SMS__ACCOUNT_SID", "AC0123".into()),
        ("PARENT_CONNECTION__SMS__AUTH_TOKEN", SMS_AUTH_TOKEN.into()),
        ("PARENT_CONNECTION__SMS__FROM", "+12025550100".into()),
        (
            "PARENT_CONNECTION__SMS__WEBHOOK_SECRET",
            WEBHOOK_SECRET.into(),
        ),
        ("PARENT_CONNECTION__PRIVACY__HASH_KEY", PRIVACY_KEY.into()),
        (
            "PARENT_CONNECTION__ONEROSTER__SECRET_KEY",
            ONEROSTER_KEY.into(),
        ),
        ("PARENT_CONNECTION__ONEROSTER__MAX_RETRIES", "0".into()),
        ("PARENT_CONNECTION__OUTBOUND__ALLOW_PRIVATE", "true".into()),
        ("PARENT_CONNECTION__OUTBOX__POLL_INTERVAL_MS", "50".into()),
        (
            "PARENT_CONNECTION__DIGEST__SCHEDULE_IN_SERVE",
            "false".into(),
        ),
        (
            "PARENT_CONNECTION__SERVER__BIND",
            format!("127.0.0.1:{port}"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let setup = Setup { dir, env };
    let mut logs: Vec<String> = Vec::new();
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sds-v21/basic");
    let fixture = fixture.display().to_string();

    // The CLI: a tenant, an import, tokens.
    setup.cli(&["tenant", "create", "nyc"], "", &mut logs);
    setup.cli(
        &[
            "import", "--tenant", "nyc", "--format", "sds-v2.1", &fixture,
        ],
        "",
        &mut logs,
    );
    let token = |args: &[&str], logs: &mut Vec<String>| {
        let mut all = vec!["token", "--tenant", "nyc"];
        all.extend_from_slice(args);
        setup.cli(&all, "", logs)
    };
    let teacher = token(&["--user", "tch-1", "--role", "teacher"], &mut logs);
    let admin = token(&["--user", "ta-1", "--role", "tenant-admin"], &mut logs);
    let contacts: serde_json::Value = serde_json::from_str(&setup.cli(
        &[
            "contacts",
            "--tenant",
            "nyc",
            "--student",
            "stu-1",
            "--json",
        ],
        "",
        &mut logs,
    ))
    .unwrap();
    let id_of = |name: &str| {
        contacts
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["displayName"] == name)
            .unwrap_or_else(|| panic!("{name} in {contacts}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (linda, tom) = (id_of("Linda Ng"), id_of("Tom Ng"));

    // The service with its dispatcher.
    let log_path = setup.dir.path().join("serve.log");
    let mut serve = setup
        .command(&["serve"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    parent_connection::sync::oneroster::client::install_crypto_provider();
    let http = reqwest::Client::new();
    let up = poll_until(async || http.get(format!("{base}/healthz")).send().await.is_ok()).await;
    assert!(up, "serve did not come up: {}", problems(&log_path));
    let chat = |contact: String| {
        http.post(format!("{base}/api/v1/chats"))
            .bearer_auth(&teacher)
            .json(&serde_json::json!({"studentId": "stu-1", "contactIds": [contact]}))
            .send()
    };
    let started = chat(linda).await.unwrap();
    assert!(started.status().is_success(), "{:?}", started.text().await);
    let texted = http
        .patch(format!("{base}/api/v1/settings"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"preferredInviteChannel": "sms"}))
        .send()
        .await
        .unwrap();
    assert!(texted.status().is_success(), "{:?}", texted.text().await);
    let started = chat(tom).await.unwrap();
    assert!(started.status().is_success(), "{:?}", started.text().await);
    let maildir = smtp.maildir.path().join("new");
    let sent = poll_until(async || {
        !read_dir_texts(&maildir).is_empty()
            && !gateway
                .received_requests()
                .await
                .unwrap_or_default()
                .is_empty()
    })
    .await;
    assert!(
        sent,
        "the email ({}) and the text ({}) were not both sent: {}",
        read_dir_texts(&maildir).len(),
        gateway.received_requests().await.unwrap_or_default().len(),
        problems(&log_path)
    );
    let _ = http
        .post(format!("{base}/api/v1/sms/inbound/nyc"))
        .header("x-webhook-secret", WEBHOOK_SECRET)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("From=%2B12025550177&To=%2B12025550100&Body=STOP")
        .send()
        .await
        .unwrap();

    // The CLI against the OneRoster provider.
    let connect = [
        "oneroster",
        "connect",
        "--tenant",
        "nyc",
        "--base-url",
        &provider.base_url,
        "--token-url",
        &provider.token_url,
        "--client-id",
        CLIENT_ID,
    ];
    let secret_line = format!("{CLIENT_SECRET}\n");
    let connect_logs = tokio::task::block_in_place(|| {
        let mut logs = Vec::new();
        setup.cli(&connect, &secret_line, &mut logs);
        setup.cli(
            &["sync", "oneroster", "--tenant", "nyc", "--force"],
            "",
            &mut logs,
        );
        logs
    });
    logs.extend(connect_logs);

    Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    tokio::task::block_in_place(|| serve.wait().unwrap());
    logs.extend(
        std::fs::read_to_string(&log_path)
            .unwrap()
            .lines()
            .map(str::to_string),
    );
    assert!(
        logs.iter().any(|l| l.contains("DEBUG")) && logs.iter().any(|l| l.contains("listening")),
        "the logs were captured at debug level: {logs:#?}"
    );

    let serve_log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(
        serve_log.matches("auth.development is on").count(),
        1,
        "serve warns once that development tokens are accepted"
    );

    let mut secrets = vec![
        JWT_SECRET.to_string(),
        SMTP_PASSWORD.into(),
        SMS_AUTH_TOKEN.into(),
        WEBHOOK_SECRET.into(),
        PRIVACY_KEY.into(),
        ONEROSTER_KEY.into(),
        CLIENT_SECRET.into(),
        "token-1".into(),
    ];
    for bearer in [&teacher, &admin] {
        secrets.push(bearer.clone());
        secrets.push(bearer.rsplit('.').next().unwrap().to_string());
    }
    let mut found = Vec::new();
    for line in &logs {
        for secret in &secrets {
            if line.contains(secret.as_str()) {
                found.push(format!("secret {secret:?} in: {line}"));
            }
        }
        if level(line) != "DEBUG" && level(line) != "TRACE" {
            for data in CONTACT_DATA {
                if line.contains(data) {
                    found.push(format!("contact data {data:?} at {}: {line}", level(line)));
                }
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

/// `program` with none of our variables but a SQLite database in `dir`.
fn scrubbed(program: &str, dir: &Path) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars() {
        if name.starts_with("PARENT_CONNECTION") || name == "RUST_LOG" || name == "MAIL_URL" {
            command.env_remove(name);
        }
    }
    command.env(
        "DATABASE_URL",
        format!("sqlite://{}?mode=rwc", dir.join("pc.db").display()),
    );
    command
}

/// The binary with none of our variables but a SQLite database in `dir`.
fn bare_command(dir: &Path) -> Command {
    scrubbed(env!("CARGO_BIN_EXE_parent-connection"), dir)
}

/// SMTP credentials without required TLS stop the dispatcher (and every command) at start
/// with one line naming the fix, without the password.
#[test]
fn smtp_credentials_without_tls_stop_the_dispatcher() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "smtp://mailer:pw-in-clear-text@127.0.0.1:2525",
        "smtp://mailer:pw-in-clear-text@127.0.0.1:2525?tls=opportunistic",
        "smtp://mailer:pw-in-clear-text@127.0.0.1:2525?tls=none",
    ] {
        for args in [&["dispatch", "--once"][..], &["serve"][..]] {
            let output = bare_command(dir.path())
                .args(args)
                .env("MAIL_URL", url)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{url} {args:?}: {said}");
            assert_eq!(said.trim().lines().count(), 1, "{said}");
            assert!(
                said.contains("tls=required")
                    && said.contains("smtps://")
                    && !said.contains("pw-in-clear-text"),
                "{said}"
            );
        }
    }
}

/// The OneRoster client secret typed at a terminal is not echoed (a pseudo-terminal driven by
/// Python's `pty`); standard input that is not a terminal is read as before (the other
/// `oneroster connect` tests).
#[test]
fn the_secret_prompt_does_not_echo() {
    let dir = tempfile::tempdir().unwrap();
    let key = [("PARENT_CONNECTION__ONEROSTER__SECRET_KEY", ONEROSTER_KEY)];
    let created = bare_command(dir.path())
        .args(["tenant", "create", "nyc"])
        .envs(key)
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let script = r#"
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
seen = b""
while b"secret" not in seen:
    seen += os.read(fd, 1024)
os.write(fd, b"typed-at-the-terminal-42\n")
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let output = scrubbed("python3", dir.path())
        .envs(key)
        .env("PARENT_CONNECTION__OUTBOUND__ALLOW_PRIVATE", "true")
        .env_remove("ONEROSTER_CLIENT_SECRET")
        .args(["-c", script, env!("CARGO_BIN_EXE_parent-connection")])
        .args([
            "oneroster",
            "connect",
            "--tenant",
            "nyc",
            "--base-url",
            "http://127.0.0.1:9/ims/oneroster/v1p1",
            "--token-url",
            "http://127.0.0.1:9/token",
            "--client-id",
            "client",
        ])
        .output()
        .unwrap();
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{terminal} {output:?}");
    assert!(terminal.contains("connected tenant nyc"), "{terminal}");
    assert!(!terminal.contains("typed-at-the-terminal-42"), "{terminal}");
}
