//! The command line as a user runs it: the real binary, a SQLite file, exit statuses, JSON
//! shapes, and `serve` answering probes and stopping on SIGTERM.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_parent-connection")
}

/// Runs the binary with a database in `dir`.
fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("cli.db").display()),
        )
        .env_remove("RUST_LOG")
        .output()
        .expect("binary runs")
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn stdout_json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[test]
fn help_explains_every_command() {
    let output = Command::new(binary()).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    for command in ["serve", "migrate", "tenant", "import", "contacts"] {
        assert!(text.contains(command), "--help lacks {command}: {text}");
    }
    let import = Command::new(binary())
        .args(["import", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&import.stdout);
    assert!(
        text.contains("--dry-run") && text.contains("--force") && text.contains("sds-v2.1"),
        "{text}"
    );
}

#[test]
fn usage_errors_are_one_line_with_exit_status_2() {
    for (args, expect) in [
        (
            &["digest", "run", "--tenant", "nyc", "--week", "2026-48"][..],
            "--week",
        ),
        (&["digest", "run"][..], "--tenant"),
        (&["no-such-command"][..], "no-such-command"),
    ] {
        let output = Command::new(binary()).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("parent-connection: ") && stderr.contains(expect),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn import_reports_json_and_exit_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let created = run(
        dir.path(),
        &[
            "tenant", "create", "demo", "--name", "Demo", "--region", "US",
        ],
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    let applied = run(
        dir.path(),
        &[
            "import",
            "--tenant",
            "demo",
            "--format",
            "sds-v2.1",
            &fixture("sds-v21/basic"),
            "--json",
        ],
    );
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let report = stdout_json(&applied);
    for key in [
        "created",
        "updated",
        "unchanged",
        "reactivated",
        "deactivated",
        "rejected",
    ] {
        assert!(
            report["counts"][key].is_u64(),
            "counts.{key} missing: {report}"
        );
    }
    assert_eq!(report["status"], "applied");
    assert_eq!(report["counts"]["created"], 20);
    let warning = &report["warnings"][0];
    for key in ["file", "record", "column", "message"] {
        assert!(!warning[key].is_null(), "warning.{key} missing: {warning}");
    }

    let dry = run(
        dir.path(),
        &[
            "import",
            "--tenant",
            "demo",
            "--format",
            "sds-v2.1",
            &fixture("sds-v21/basic"),
            "--dry-run",
        ],
    );
    assert_eq!(dry.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&dry.stdout).contains("dry run"));

    // The v1 set would deactivate every v2.1 link: refused, exit 2, one line on stderr.
    let refused = run(
        dir.path(),
        &[
            "import",
            "--tenant",
            "demo",
            "--format",
            "sds-v1",
            &fixture("sds-v1/basic"),
            "--json",
        ],
    );
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("deletion_guard"), "{stderr}");
    assert_eq!(stdout_json(&refused)["errors"][0]["code"], "deletion_guard");

    let contacts = run(
        dir.path(),
        &[
            "contacts",
            "--tenant",
            "demo",
            "--student",
            "stu-1",
            "--json",
        ],
    );
    assert!(contacts.status.success());
    let items = stdout_json(&contacts);
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 2);
    for key in [
        "id",
        "displayName",
        "emailAddress",
        "mobilePhone",
        "relationship",
        "status",
    ] {
        assert!(items[0].get(key).is_some(), "{key} missing: {}", items[0]);
    }
    assert!(items[0].get("provenance").is_none());
    let all = stdout_json(&run(
        dir.path(),
        &[
            "contacts",
            "--tenant",
            "demo",
            "--student",
            "stu-1",
            "--all",
            "--json",
        ],
    ));
    assert_eq!(all.as_array().unwrap().len(), 4);
    assert!(all[0]["provenance"]["emailAddress"]["source"].is_string());
}

#[test]
fn failures_give_one_line_and_non_zero_status() {
    let dir = tempfile::tempdir().unwrap();
    // The first command on a new data folder announces the key it makes (privacy.key).
    let first = run(dir.path(), &["migrate"]);
    assert!(first.status.success(), "{first:?}");
    let unknown = run(
        dir.path(),
        &[
            "import",
            "--tenant",
            "nope",
            "--format",
            "sds-v1",
            &fixture("sds-v1/basic"),
        ],
    );
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("no tenant named 'nope'"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1);

    let bad_slug = run(dir.path(), &["tenant", "create", "Not A Slug"]);
    assert_eq!(bad_slug.status.code(), Some(2), "a malformed value");
    let bad_region = run(dir.path(), &["tenant", "create", "ok", "--region", "XX"]);
    assert_eq!(bad_region.status.code(), Some(2), "a malformed value");
    assert!(String::from_utf8_lossy(&bad_region.stderr).contains("region"));
    run(dir.path(), &["tenant", "create", "ok"]);
    let twice = run(dir.path(), &["tenant", "create", "ok"]);
    assert_eq!(twice.status.code(), Some(1));
    let student = run(
        dir.path(),
        &["contacts", "--tenant", "ok", "--student", "x"],
    );
    assert_eq!(student.status.code(), Some(1));
}

#[test]
fn serve_answers_probes_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(binary())
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env(
            "DATABASE_URL",
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("nested/dir/serve.db").display()
            ),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // reqwest's rustls has no built-in crypto provider: the app installs ring's.
    parent_connection::sync::oneroster::client::install_crypto_provider();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        if let Ok(response) = runtime.block_on(client.get(format!("{base}/healthz")).send()) {
            break response;
        }
        assert!(Instant::now() < deadline, "serve did not come up");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(health.status(), 200);
    let ready = runtime
        .block_on(client.get(format!("{base}/readyz")).send())
        .unwrap();
    assert_eq!(ready.status(), 200);
    let missing = runtime
        .block_on(client.get(format!("{base}/nope")).send())
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = runtime.block_on(missing.json()).unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    // Created and migrated on first start.
    assert!(dir.path().join("nested/dir/serve.db").exists());

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "serve exited with {status}");
            break;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &["tenant", "create", "demo"]);
    let mut child = Command::new(binary())
        .args([
            "import",
            "--tenant",
            "demo",
            "--format",
            "sds-v2.1",
            &fixture("sds-v21/basic"),
            "--json",
        ])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}

#[test]
fn settings_get_and_set_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        run(dir.path(), &["tenant", "create", "demo"])
            .status
            .success()
    );
    let all = run(dir.path(), &["settings", "get", "--tenant", "demo"]);
    let text = String::from_utf8_lossy(&all.stdout);
    assert!(text.contains("update-parent-information = true"), "{text}");
    assert!(text.contains("preferred-invite-channel = email"), "{text}");
    let set = run(
        dir.path(),
        &[
            "settings",
            "set",
            "--tenant",
            "demo",
            "update-parent-information",
            "false",
        ],
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let one = run(
        dir.path(),
        &[
            "settings",
            "get",
            "--tenant",
            "demo",
            "update-parent-information",
            "--json",
        ],
    );
    assert_eq!(
        stdout_json(&one),
        serde_json::json!({"updateParentInformation": false})
    );
    let bad = run(
        dir.path(),
        &[
            "settings",
            "set",
            "--tenant",
            "demo",
            "preferred-invite-channel",
            "fax",
        ],
    );
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("email, sms") && stderr.lines().count() == 1,
        "{stderr}"
    );
    let unknown = run(
        dir.path(),
        &["settings", "get", "--tenant", "demo", "colour"],
    );
    assert_eq!(
        unknown.status.code(),
        Some(2),
        "an unknown key is a usage error"
    );
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("digest-enabled"));
}

/// Admins list and lift digest unsubscribes from the command line too (`digest
/// unsubscribes`, `digest resubscribe`); a guardian unsubscribes through the link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_unsubscribes_are_listed_and_lifted_from_the_cli() {
    use parent_connection::digest::{UnsubscribeSource as Source, unsubscribe};
    use parent_connection::domain::TenantId;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let cli = move |args: &[&str]| run(&path, args);
    assert!(cli(&["tenant", "create", "demo"]).status.success());
    let import = cli(&[
        "import",
        "--tenant",
        "demo",
        "--format",
        "sds-v2.1",
        &fixture("sds-v21/basic"),
    ]);
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let contacts = stdout_json(&cli(&[
        "contacts",
        "--tenant",
        "demo",
        "--student",
        "stu-1",
        "--json",
    ]));
    let linda = contacts
        .as_array()
        .or_else(|| contacts["items"].as_array())
        .expect("a list of contacts")
        .iter()
        .find(|c| c["displayName"] == "Linda Ng")
        .expect("Linda Ng")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let empty = cli(&["digest", "unsubscribes", "--tenant", "demo"]);
    assert!(empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stdout).contains("no guardian is unsubscribed"));

    let url = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());
    let conn = sea_orm::Database::connect(&url).await.unwrap();
    let id: i64 = linda.parse().unwrap();
    let added = unsubscribe(&conn, TenantId(1), id, Source::Guardian, "guardian")
        .await
        .unwrap();
    assert_eq!(added, Some(true));
    conn.close().await.unwrap();

    let listed = stdout_json(&cli(&[
        "digest",
        "unsubscribes",
        "--tenant",
        "demo",
        "--json",
    ]));
    let items = listed.as_array().expect("a JSON list");
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(
        items[0]["contactId"].to_string().trim_matches('"'),
        linda,
        "{listed}"
    );
    let lifted = cli(&[
        "digest",
        "resubscribe",
        "--tenant",
        "demo",
        "--contact",
        &linda,
    ]);
    assert_eq!(
        lifted.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&lifted.stderr)
    );
    let again = cli(&[
        "digest",
        "resubscribe",
        "--tenant",
        "demo",
        "--contact",
        &linda,
    ]);
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not unsubscribed"), "{stderr}");
    let after = stdout_json(&cli(&[
        "digest",
        "unsubscribes",
        "--tenant",
        "demo",
        "--json",
    ]));
    assert_eq!(after, serde_json::json!([]));
}
