//! `parent-connection settings get|set --tenant SLUG KEY [VALUE]`: tenant settings with
//! kebab-case keys, through the same parsing and audited update as `PATCH /api/v1/settings`.

use super::{Failure, open, out_raw};
use crate::config::Config;
use crate::tenants::settings::{self, Key};
use crate::{audit, tenants};

/// `settings` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SettingsCommand {
    /// Print one setting's value, or every setting when KEY is left out.
    Get {
        /// Tenant slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// preferred-invite-channel, update-parent-information, digest-enabled, digest-day,
        /// digest-hour, digest-time-zone, deletion-guard-percent or
        /// auto-remove-inactive-guardians.
        #[arg(value_name = "KEY")]
        key: Option<String>,
        /// Print JSON (camelCase keys, as the API).
        #[arg(long)]
        json: bool,
    },
    /// Change one setting (audited with the values before and after).
    Set {
        /// Tenant slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// The setting (see `settings get --help`).
        #[arg(value_name = "KEY")]
        key: String,
        /// The new value: email|sms, true|false, a percentage 0-100, a day (monday..sunday),
        /// an hour 0-23, or an IANA time zone (America/New_York).
        #[arg(value_name = "VALUE")]
        value: String,
    },
}

/// Runs a `settings` subcommand.
pub(super) async fn run(command: SettingsCommand, config: &Config) -> Result<(), Failure> {
    match command {
        SettingsCommand::Get { tenant, key, json } => {
            let key = key.as_deref().map(Key::parse).transpose()?;
            let conn = open(config).await?;
            let tenant = tenants::find(&conn, &tenant).await?;
            let current = settings::get(&conn, tenant.id).await?;
            let text = match (key, json) {
                (Some(key), false) => format!("{}\n", key.show(&current)),
                (Some(key), true) => format!(
                    "{}\n",
                    serde_json::json!({ key.camel(): serde_json::to_value(&current)?[key.camel()] })
                ),
                (None, false) => Key::ALL
                    .iter()
                    .map(|k| format!("{} = {}\n", k.kebab(), k.show(&current)))
                    .collect(),
                (None, true) => format!("{}\n", serde_json::to_string_pretty(&current)?),
            };
            out_raw(&text);
            Ok(())
        }
        SettingsCommand::Set { tenant, key, value } => {
            let key = Key::parse(&key)?;
            let value = key.parse_text(&value)?;
            let conn = open(config).await?;
            let tenant = tenants::find(&conn, &tenant).await?;
            let updated =
                settings::update(&conn, tenant.id, &[(key, value)], &audit::cli_actor()).await?;
            out_raw(&format!("{} = {}\n", key.kebab(), key.show(&updated)));
            Ok(())
        }
    }
}
