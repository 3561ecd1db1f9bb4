//! `oneroster connect` and `sync oneroster`: store a tenant's OneRoster 1.1 connection, and
//! run a full or delta sync from it (docs/oneroster.md).

use super::{Failure, open, out_raw};
use crate::audit;
use crate::config::Config;
use crate::sync::oneroster::connection::{self, NewConnection, Secret};
use crate::sync::oneroster::{self, SyncRequest};
use crate::sync::report::RunStatus;
use crate::tenants;
use clap::Subcommand;
use std::io::{BufRead, IsTerminal, Write};

/// The environment variable `oneroster connect` reads the client secret from.
pub const SECRET_VARIABLE: &str = "ONEROSTER_CLIENT_SECRET";

/// `oneroster` subcommands.
#[derive(Debug, Subcommand)]
pub enum OneRosterCommand {
    /// Store (or replace) the tenant's OneRoster connection.
    ///
    /// The client secret is read from ONEROSTER_CLIENT_SECRET, else from the first line of
    /// standard input; it is never a flag. It is stored encrypted with
    /// oneroster.secret_key (PARENT_CONNECTION__ONEROSTER__SECRET_KEY, 64 hex characters);
    /// on SQLite without one, with the key file data/oneroster-secret.key, made on first use.
    Connect {
        /// Tenant slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// Base URL of the provider's API, e.g. https://sis.example/ims/oneroster/v1p1.
        #[arg(long, value_name = "URL")]
        base_url: String,
        /// OAuth2 token endpoint (client credentials).
        #[arg(long, value_name = "URL")]
        token_url: String,
        /// OAuth2 client id.
        #[arg(long, value_name = "ID")]
        client_id: String,
        /// Rows asked per page (default oneroster.default_page_size, at most
        /// oneroster.max_page_size).
        #[arg(long, value_name = "N")]
        page_size: Option<u64>,
    },
}

/// `sync` subcommands.
#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Sync contacts and roster from the tenant's OneRoster connection.
    ///
    /// A full run is a snapshot (what the provider no longer returns becomes inactive); with
    /// --delta only records changed since the last applied run are read and only what they
    /// mark gone is deactivated. Exit status: 0 applied, 2 refused, 1 could not run (the
    /// provider unreachable, failing or malformed: nothing was changed).
    #[command(name = "oneroster")]
    OneRoster {
        /// Tenant slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// Only records changed since the last applied run (filter on dateLastModified).
        #[arg(long)]
        delta: bool,
        /// Apply even when the deletion guard would refuse.
        #[arg(long)]
        force: bool,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `oneroster connect`.
pub(super) async fn connect(command: OneRosterCommand, config: &Config) -> Result<(), Failure> {
    let OneRosterCommand::Connect {
        tenant,
        base_url,
        token_url,
        client_id,
        page_size,
    } = command;
    let mut new = NewConnection {
        base_url,
        token_url,
        client_id,
        client_secret: Secret::new(""),
        page_size,
    };
    connection::check_values(&new, &config.oneroster).map_err(Failure::usage)?;
    let conn = open(config).await?;
    let tenant = tenants::find(&conn, &tenant).await?;
    // Checked (and on SQLite made) before the secret is asked for, so a missing key does
    // not waste a paste.
    connection::SecretKey::from_config(config)?;
    new.client_secret = read_secret()?;
    let view = connection::save(&conn, config, tenant.id, &new, &audit::cli_actor())
        .await
        .map_err(|e| match e {
            connection::ConnectionError::Invalid(message) => Failure::usage(message),
            other => Failure::from(other),
        })?;
    out_raw(&format!(
        "connected tenant {} to {} (client {}, page size {}); the secret is stored encrypted\n",
        tenant.slug, view.base_url, view.client_id, view.page_size
    ));
    Ok(())
}

/// The client secret from the environment, else the first line of standard input.
fn read_secret() -> Result<Secret, Failure> {
    if let Ok(secret) = std::env::var(SECRET_VARIABLE)
        && !secret.is_empty()
    {
        return Ok(Secret::new(secret));
    }
    let stdin = std::io::stdin();
    let mut line = String::new();
    if stdin.is_terminal() {
        // Echo off before the prompt: what is typed as soon as it shows is not echoed either.
        let _quiet = EchoOff::new(&stdin);
        eprint!("OneRoster client secret (not shown): ");
        let _ = std::io::stderr().flush();
        stdin.lock().read_line(&mut line)?;
        // The Enter the user typed was not echoed either.
        eprintln!();
    } else {
        stdin.lock().read_line(&mut line)?;
    }
    let secret = line.trim_end_matches(['\r', '\n']).to_string();
    if secret.is_empty() {
        return Err(Failure::usage(format!(
            "no client secret: set {SECRET_VARIABLE} or give it on standard input"
        )));
    }
    Ok(Secret::new(secret))
}

/// The terminal's echo turned off while it lives (a typed secret is not shown); restored
/// when dropped, also on an error.
struct EchoOff<'a> {
    stdin: &'a std::io::Stdin,
    saved: Option<nix::sys::termios::Termios>,
}

impl<'a> EchoOff<'a> {
    fn new(stdin: &'a std::io::Stdin) -> Self {
        use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
        let saved = tcgetattr(stdin).ok();
        if let Some(saved) = &saved {
            let mut quiet = saved.clone();
            quiet.local_flags.remove(LocalFlags::ECHO);
            let _ = tcsetattr(stdin, SetArg::TCSANOW, &quiet);
        }
        Self { stdin, saved }
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ =
                nix::sys::termios::tcsetattr(self.stdin, nix::sys::termios::SetArg::TCSANOW, saved);
        }
    }
}

/// Runs `sync oneroster`.
pub(super) async fn sync(command: SyncCommand, config: &Config) -> Result<(), Failure> {
    let SyncCommand::OneRoster {
        tenant,
        delta,
        force,
        json,
    } = command;
    let conn = open(config).await?;
    let request = SyncRequest {
        tenant,
        delta,
        force,
        actor: audit::cli_actor(),
    };
    let report = oneroster::sync(&conn, config, &request).await?;
    if json {
        out_raw(&format!("{}\n", serde_json::to_string_pretty(&report)?));
    } else {
        out_raw(&report.to_human());
    }
    let first = report
        .errors
        .first()
        .map(|e| e.to_string())
        .unwrap_or_default();
    match report.status {
        RunStatus::Applied | RunStatus::DryRun => Ok(()),
        RunStatus::Refused => Err(Failure {
            code: 2,
            message: format!(
                "OneRoster sync refused ({} error(s)); first: {first}",
                report.errors.len()
            ),
        }),
        RunStatus::Failed => Err(Failure {
            code: 1,
            message: format!("OneRoster sync failed, nothing was changed: {first}"),
        }),
    }
}
