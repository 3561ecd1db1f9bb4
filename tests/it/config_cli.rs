//! Configuration and the command-line contract as an operator meets them, through the real
//! binary: exit statuses (2 for a malformed value, 1 for a failure to run) with one line on
//! standard error, settings keys in `--help`, `migrate`'s report, log lines on a pipe, start-up
//! checks before `serve` listens, and database connection failures that name their cause.

use parent_connection::tenants::settings::Key;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_parent-connection")
}

fn sqlite(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("pc.db").display())
}

/// Runs the binary on the SQLite file in `dir` with extra environment variables.
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(binary());
    command
        .args(args)
        .env("DATABASE_URL", sqlite(dir))
        .env_remove("RUST_LOG")
        .env_remove("JWT_SECRET")
        .env_remove("PARENT_CONNECTION__ONEROSTER__SECRET_KEY")
        .env("ONEROSTER_CLIENT_SECRET", "s3cret")
        .env("PARENT_CONNECTION__AUTH__DEVELOPMENT", "true")
        .stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("binary runs")
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Every subcommand's malformed values exit 2, its failures to run exit 1, each with one
/// line on standard error that says what is wrong.
#[test]
fn exit_statuses_follow_the_readme() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        run(dir.path(), &["tenant", "create", "nyc"], &[])
            .status
            .success()
    );
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    let csv = dir.path().join("missing.csv");
    let csv = csv.to_str().unwrap();
    let refused = format!("postgres://pc:pw@127.0.0.1:{}/pc", closed_port());
    let jwt = "config-cli-secret-0123456789abcdef0123456789";
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, i32, &'a str);
    let cases: Vec<Case> = vec![
        // Malformed values: 2.
        (
            vec![
                "token", "--tenant", "nyc", "--user", "u", "--role", "teacher", "--ttl", "60d",
            ],
            vec![("JWT_SECRET", jwt)],
            2,
            "60d",
        ),
        (
            vec![
                "token",
                "--tenant",
                "Not A Slug",
                "--app",
                "--scope",
                "EduRoster.Read.All",
            ],
            vec![("JWT_SECRET", jwt)],
            2,
            "Not A Slug",
        ),
        (
            vec!["settings", "set", "--tenant", "nyc", "digest-day", "funday"],
            vec![],
            2,
            "digest-day: 'funday'",
        ),
        (
            vec!["settings", "set", "--tenant", "nyc", "digest-hour", "24"],
            vec![],
            2,
            "digest-hour",
        ),
        (
            vec![
                "settings",
                "set",
                "--tenant",
                "nyc",
                "deletion-guard-percent",
                "101",
            ],
            vec![],
            2,
            "deletion-guard-percent",
        ),
        (
            vec![
                "settings",
                "set",
                "--tenant",
                "nyc",
                "invite-window-days",
                "0",
            ],
            vec![],
            2,
            "invite-window-days",
        ),
        (
            vec![
                "settings",
                "set",
                "--tenant",
                "nyc",
                "digest-enabled",
                "maybe",
            ],
            vec![],
            2,
            "true, false",
        ),
        (
            vec![
                "settings",
                "set",
                "--tenant",
                "nyc",
                "digest-time-zone",
                "EST",
            ],
            vec![],
            2,
            "America/New_York",
        ),
        (
            vec![
                "settings",
                "set",
                "--tenant",
                "nyc",
                "digest-time-zone",
                "PST8PDT",
            ],
            vec![],
            2,
            "America/Los_Angeles",
        ),
        (
            vec!["settings", "get", "--tenant", "nyc", "colour"],
            vec![],
            2,
            "digest-time-zone",
        ),
        (
            vec!["digest", "run", "--tenant", "nyc", "--week", "2026-48"],
            vec![],
            2,
            "--week",
        ),
        (
            vec!["digest", "run", "--tenant", "nyc", "--week", "2026-W60"],
            vec![],
            2,
            "--week",
        ),
        (
            vec!["digest", "run", "--tenant", "nyc", "--page-size", "0"],
            vec![],
            2,
            "--page-size",
        ),
        (vec!["tenant", "create", "Bad Slug"], vec![], 2, "Bad Slug"),
        (
            vec!["tenant", "create", "ok", "--region", "XX"],
            vec![],
            2,
            "XX",
        ),
        (
            vec!["import", "--tenant", "nyc", "--format", "sds-v3", "."],
            vec![],
            2,
            "sds-v3",
        ),
        (
            vec![
                "oneroster",
                "connect",
                "--tenant",
                "nyc",
                "--base-url",
                "nope",
                "--token-url",
                "http://x/t",
                "--client-id",
                "c",
            ],
            vec![],
            2,
            "base URL",
        ),
        (
            vec![
                "oneroster",
                "connect",
                "--tenant",
                "nyc",
                "--base-url",
                "http://x",
                "--token-url",
                "http://x/t",
                "--client-id",
                "c",
                "--page-size",
                "0",
            ],
            vec![],
            2,
            "page size",
        ),
        (vec!["serve", "--bind", "8080"], vec![], 2, "listen address"),
        (
            vec!["migrate"],
            vec![("PARENT_CONNECTION__IMPORT__ERROR_CAP", "lots")],
            2,
            "PARENT_CONNECTION__IMPORT__ERROR_CAP",
        ),
        (
            vec!["migrate"],
            vec![("PARENT_CONNECTION__DIGEST__SCHEDULE_IN_SERVE", "yes")],
            2,
            "true or false",
        ),
        (
            vec!["migrate"],
            vec![("MAIL_URL", "smtp:/relay")],
            2,
            "MAIL_URL",
        ),
        (
            vec!["migrate"],
            vec![("PARENT_CONNECTION__LOG__FORMAT", "xml")],
            2,
            "log.format",
        ),
        (
            vec!["migrate"],
            vec![("DATABASE_URL", "mysql://db/pc")],
            2,
            "DATABASE_URL",
        ),
        // Failures to run: 1.
        (
            vec!["import", "--tenant", "nyc", "--format", "sds-v1", missing],
            vec![],
            1,
            "does not exist",
        ),
        (
            vec!["assignments", "import", "--tenant", "nyc", csv],
            vec![],
            1,
            "does not exist",
        ),
        (
            vec!["contacts", "--tenant", "nope", "--student", "x"],
            vec![],
            1,
            "nope",
        ),
        (
            vec!["contacts", "--tenant", "nyc", "--student", "x"],
            vec![],
            1,
            "'x'",
        ),
        (vec!["tenant", "create", "nyc"], vec![], 1, "already exists"),
        (
            vec!["digest", "run", "--tenant", "nyc"],
            vec![],
            1,
            "digest-enabled",
        ),
        (
            vec!["sync", "oneroster", "--tenant", "nyc"],
            vec![],
            1,
            "no OneRoster connection",
        ),
        (
            vec![
                "token",
                "--tenant",
                "nyc",
                "--app",
                "--scope",
                "EduRoster.Read.All",
            ],
            vec![],
            1,
            "JWT_SECRET",
        ),
        (
            vec!["migrate"],
            vec![("DATABASE_URL", &refused)],
            1,
            "connection refused",
        ),
        (
            vec!["migrate"],
            vec![("PARENT_CONNECTION__AUTH__JWKS_PATH", "/no/such/jwks.json")],
            1,
            "/no/such/jwks.json",
        ),
    ];
    for (args, env, code, expect) in cases {
        let output = run(dir.path(), &args, &env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?} {env:?}: {stderr}"
        );
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?} {env:?}: {stderr}"
        );
        assert!(
            stderr.starts_with("parent-connection: ") && stderr.contains(expect),
            "{args:?} {env:?}: {stderr}"
        );
    }
}

/// `settings get --help` and `settings set --help` list every key defined in
/// `tenants/settings.rs`, with what it accepts.
#[test]
fn settings_help_lists_every_key() {
    for command in ["get", "set"] {
        let output = Command::new(binary())
            .args(["settings", command, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&output.stdout);
        for key in Key::ALL {
            assert!(
                help.contains(key.kebab()),
                "settings {command} --help lacks {}: {help}",
                key.kebab()
            );
        }
        assert!(help.contains("valid values are email, sms"), "{help}");
    }
}

#[test]
fn migrate_names_what_it_applied() {
    let dir = tempfile::tempdir().unwrap();
    // No ?mode=rwc: the file is created all the same.
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let first = run(dir.path(), &["migrate"], &[("DATABASE_URL", &url)]);
    assert!(first.status.success(), "{first:?}");
    let text = String::from_utf8_lossy(&first.stdout);
    let applied = text.lines().filter(|l| l.starts_with("applied m")).count();
    assert!(applied >= 10, "{text}");
    assert!(
        text.contains(&format!("({applied} migrations, {applied} applied now)")),
        "{text}"
    );
    let again = run(dir.path(), &["migrate"], &[("DATABASE_URL", &url)]);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        format!("database is up to date ({applied} migrations)")
    );
}

/// String keys keep number-like text from the environment (the unit tests in config.rs
/// cover every key); a misspelled variable is a warning naming the likely key.
#[test]
fn the_environment_is_read_as_operators_write_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &["migrate"],
        &[
            ("PARENT_CONNECTION__SMS__FROM", "+12025550199"),
            ("PARENT_CONNECTION__MAIL__MESSAGE_ID_DOMAIN", "0123"),
            ("PARENT_CONNECTION__AUTH__ALGORITHMS", "RS256"),
            ("PARENT_CONNECTION__ONEROSTER__SECRETKEY", "x"),
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("PARENT_CONNECTION__ONEROSTER__SECRETKEY names no configuration key")
            && stderr.contains("did you mean PARENT_CONNECTION__ONEROSTER__SECRET_KEY?"),
        "{stderr}"
    );
}

#[test]
fn log_lines_on_a_pipe_have_no_colour_and_json_is_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let typo = ("PARENT_CONNECTION__SERVER__BINDD", "x");
    let pretty = run(dir.path(), &["migrate"], &[typo]);
    let text = String::from_utf8_lossy(&pretty.stderr);
    assert!(
        text.contains("WARN") && !text.contains('\u{1b}'),
        "{text:?}"
    );
    let json = run(
        dir.path(),
        &["migrate"],
        &[typo, ("PARENT_CONNECTION__LOG__FORMAT", "json")],
    );
    let text = String::from_utf8_lossy(&json.stderr);
    assert_eq!(text.lines().count(), 1, "{text}");
    for line in text.lines() {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(object["level"], "WARN");
        assert!(
            object["fields"]["message"]
                .as_str()
                .unwrap()
                .contains("SERVER__BIND")
        );
    }

    // serve's own lines, up to "listening".
    for format in ["pretty", "json"] {
        let mut child = Command::new(binary())
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("DATABASE_URL", sqlite(dir.path()))
            .env("PARENT_CONNECTION__LOG__FORMAT", format)
            .env("PARENT_CONNECTION__DIGEST__SCHEDULE_IN_SERVE", "false")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = Vec::new();
        let mut reader = BufReader::new(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
                break;
            }
            let listening = line.contains("listening");
            lines.push(line);
            if listening {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            lines.last().is_some_and(|l| l.contains("listening")),
            "{format}: {lines:?}"
        );
        for line in &lines {
            assert!(!line.contains('\u{1b}'), "{format}: {line:?}");
            if format == "json" {
                serde_json::from_str::<serde_json::Value>(line)
                    .unwrap_or_else(|e| panic!("{e}: {line}"));
            }
        }
    }
}

/// A bad setting stops `serve` with one line before it says "listening"; so does an address
/// already in use.
#[test]
fn serve_checks_every_setting_before_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    for (env, bind, code, expect) in [
        (
            ("PARENT_CONNECTION__INVITES__JOIN_URL", "join-here"),
            "127.0.0.1:0",
            2,
            "invites.join_url",
        ),
        (("SMS_URL", "gateway.example"), "127.0.0.1:0", 2, "SMS_URL"),
        (
            ("PARENT_CONNECTION__API__MAX_PAGE_SIZE", "10"),
            "127.0.0.1:0",
            2,
            "api.default_page_size",
        ),
        (
            ("PARENT_CONNECTION__MAIL__FROM", "not a mailbox"),
            "127.0.0.1:0",
            2,
            "mail.from",
        ),
        (
            ("PARENT_CONNECTION__ONEROSTER__SECRET_KEY", "short"),
            "127.0.0.1:0",
            2,
            "64 hex",
        ),
        (
            (
                "PARENT_CONNECTION__AUTH__RS256_PUBLIC_KEY_PATHS",
                "/no/key.pem",
            ),
            "127.0.0.1:0",
            1,
            "/no/key.pem",
        ),
        (
            ("PARENT_CONNECTION__LOG__LEVEL", "info"),
            taken.as_str(),
            1,
            "cannot listen",
        ),
    ] {
        let started = Instant::now();
        let output = run(dir.path(), &["serve", "--bind", bind], &[env]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{env:?}: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(20), "{env:?}");
        assert!(!stderr.contains("listening"), "{env:?}: {stderr}");
        let last = stderr.trim_end().lines().last().unwrap_or_default();
        assert!(
            last.starts_with("parent-connection: ") && last.contains(expect),
            "{env:?}: {stderr}"
        );
        if code == 2 {
            assert_eq!(stderr.trim_end().lines().count(), 1, "{env:?}: {stderr}");
        }
    }
}

/// An unreachable PostgreSQL fails within seconds and names why: refused, or the host name
/// does not resolve.
#[test]
fn database_connection_failures_name_the_cause_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let refused = format!("postgres://pc:hunter2@127.0.0.1:{}/pc", closed_port());
    for (url, expect) in [
        (refused.as_str(), "connection refused"),
        ("postgres://pc:hunter2@db.invalid/pc", "does not resolve"),
    ] {
        let started = Instant::now();
        let output = run(
            dir.path(),
            &["tenant", "create", "nyc"],
            &[("DATABASE_URL", url)],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert!(
            stderr.contains(expect) && !stderr.contains("hunter2"),
            "{stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
    // A SQLite folder that cannot be created is named.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let url = format!("sqlite://{}/sub/pc.db", blocker.display());
    let output = run(dir.path(), &["migrate"], &[("DATABASE_URL", &url)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("the folder {}/sub", blocker.display())),
        "{stderr}"
    );
}
