//! `parent-connection token`: the real binary mints tokens the service accepts, and refuses
//! keys that are not development keys unless forced.

use crate::api_support::{SECRET, key};
use parent_connection::auth::Verifier;
use parent_connection::auth::keys::identity;
use parent_connection::auth::{Identity, Role};
use std::path::Path;
use std::process::{Command, Output};

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_parent-connection")
}

/// Runs the binary with a database in `dir` and the given environment.
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(binary());
    command
        .args(args)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("cli.db").display()),
        )
        .env_remove("RUST_LOG")
        .env_remove("JWT_SECRET")
        .env_remove("PARENT_CONNECTION_CONFIG");
    for (name, _) in std::env::vars() {
        if name.starts_with("PARENT_CONNECTION__") {
            command.env_remove(name);
        }
    }
    // The tests' tokens are development tokens.
    command.env("PARENT_CONNECTION__AUTH__DEVELOPMENT", "true");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn verifier(change: impl FnOnce(&mut parent_connection::config::Config)) -> Verifier {
    let mut config = crate::support::config();
    config.auth.jwt_secret = SECRET.into();
    change(&mut config);
    Verifier::from_config(&config.auth).unwrap()
}

#[test]
fn token_mints_what_the_service_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("JWT_SECRET", SECRET)];
    assert!(
        run(dir.path(), &["tenant", "create", "nyc"], &env)
            .status
            .success()
    );

    let output = run(
        dir.path(),
        &[
            "token",
            "--tenant",
            "nyc",
            "--user",
            "tch-1",
            "--role",
            "teacher",
            "--role",
            "global-admin",
            "--ttl",
            "2h",
        ],
        &env,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let token = stdout(&output);
    assert_eq!(token.split('.').count(), 3, "{token}");
    let claims = verifier(|_| {})
        .verify(&token)
        .expect("the service accepts it");
    assert_eq!(claims.tenant, "nyc");
    assert_eq!(claims.exp - claims.iat, 7200);
    assert_eq!(
        identity(&claims).unwrap(),
        Identity::User {
            source_id: "tch-1".into(),
            roles: vec![Role::Teacher, Role::GlobalAdmin]
        }
    );

    let output = run(
        dir.path(),
        &[
            "token",
            "--tenant",
            "nyc",
            "--app",
            "--scope",
            "EduRoster.Read.All",
        ],
        &env,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let claims = verifier(|_| {}).verify(&stdout(&output)).unwrap();
    assert_eq!(claims.exp - claims.iat, 3600, "default ttl 1h");
    match identity(&claims).unwrap() {
        Identity::App { scopes, .. } => assert_eq!(scopes[0].as_str(), "EduRoster.Read.All"),
        other => panic!("{other:?}"),
    }

    // Longer than auth.max_token_lifetime: refused (issue 19).
    let capped = [
        ("JWT_SECRET", SECRET),
        ("PARENT_CONNECTION__AUTH__MAX_TOKEN_LIFETIME", "1h"),
    ];
    let output = run(
        dir.path(),
        &[
            "token", "--tenant", "nyc", "--user", "u", "--role", "teacher", "--ttl", "2h",
        ],
        &capped,
    );
    assert!(!output.status.success());
    assert!(stdout(&output).is_empty());
    assert!(
        stderr(&output).contains("max_token_lifetime"),
        "{}",
        stderr(&output)
    );

    // Mistakes: exit non-zero with one line on standard error.
    for (args, needle) in [
        (
            vec![
                "token", "--tenant", "nope", "--user", "u", "--role", "teacher",
            ],
            "no tenant",
        ),
        (
            vec!["token", "--tenant", "nyc", "--user", "u", "--role", "boss"],
            "unknown role",
        ),
        (vec!["token", "--tenant", "nyc", "--user", "u"], "--role"),
        (vec!["token", "--tenant", "nyc", "--app"], "--scope"),
        (vec!["token", "--tenant", "nyc"], "required"),
        (
            vec![
                "token", "--tenant", "nyc", "--user", "u", "--role", "teacher", "--ttl", "0s",
            ],
            "between",
        ),
        (
            vec!["token", "--tenant", "nyc", "--app", "--scope", "bad scope"],
            "not a valid scope",
        ),
    ] {
        let output = run(dir.path(), &args, &env);
        assert!(!output.status.success(), "{args:?}");
        assert!(stdout(&output).is_empty(), "{args:?}");
        assert!(
            stderr(&output).contains(needle),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn token_refuses_keys_that_are_not_development_keys() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        run(dir.path(), &["tenant", "create", "nyc"], &[])
            .status
            .success()
    );
    let args = [
        "token",
        "--tenant",
        "nyc",
        "--user",
        "a",
        "--role",
        "global-admin",
    ];

    let output = run(dir.path(), &args, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("JWT_SECRET"),
        "{}",
        stderr(&output)
    );
    let output = run(dir.path(), &args, &[("JWT_SECRET", "short")]);
    assert!(
        stderr(&output).contains("at least 32 bytes"),
        "{}",
        stderr(&output)
    );

    // An RS256 private key is a production key.
    let private = key("rs256-a.key.pem");
    let env = [
        (
            "PARENT_CONNECTION__AUTH__SIGNING_KEY_PATH",
            private.as_str(),
        ),
        ("PARENT_CONNECTION__AUTH__SIGNING_KEY_ID", "key-a"),
    ];
    let output = run(dir.path(), &args, &env);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("refusing to mint") && stderr(&output).contains("--force"),
        "{}",
        stderr(&output)
    );
    let forced: Vec<&str> = args.iter().copied().chain(["--force"]).collect();
    let output = run(dir.path(), &forced, &env);
    assert!(output.status.success(), "{}", stderr(&output));
    let claims = verifier(|config| {
        config.auth.algorithms = vec!["RS256".into()];
        config.auth.jwks_path = key("jwks-a.json");
    })
    .verify(&stdout(&output))
    .expect("verifies with the matching public key");
    assert_eq!(claims.sub, "a");

    // A secret the deployment does not accept (development off).
    let env = [
        ("JWT_SECRET", SECRET),
        ("PARENT_CONNECTION__AUTH__DEVELOPMENT", "false"),
    ];
    let output = run(dir.path(), &args, &env);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("refusing to mint")
            && stderr(&output).contains("PARENT_CONNECTION__AUTH__DEVELOPMENT=true"),
        "{}",
        stderr(&output)
    );
    assert!(run(dir.path(), &forced, &env).status.success());

    // The example secret of the old README is refused, even forced, with one line.
    let published = [("JWT_SECRET", "dev-only-secret-change-me-0123456789abcdef")];
    for args in [&args[..], &forced[..]] {
        let output = run(dir.path(), args, &published);
        assert_ne!(output.status.code(), Some(0));
        assert!(stdout(&output).is_empty());
        let said = stderr(&output);
        assert!(
            said.contains("example secret")
                && said.contains("openssl rand -hex 32")
                && said.trim().lines().count() == 1,
            "{said}"
        );
    }
}
