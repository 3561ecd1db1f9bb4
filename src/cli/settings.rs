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
        /// The setting (every setting when left out).
        #[arg(value_name = "KEY")]
        key: Option<Key>,
        /// Print JSON (camelCase keys, as the API).
        #[arg(long)]
        json: bool,
    },
    /// Change one setting (audited with the values before and after).
    Set {
        /// Tenant slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// The setting.
        #[arg(value_name = "KEY")]
        key: Key,
        /// The new value, as listed for its key above.
        #[arg(value_name = "VALUE")]
        value: String,
    },
}

/// Runs a `settings` subcommand.
pub(super) async fn run(command: SettingsCommand, config: &Config) -> Result<(), Failure> {
    match command {
        SettingsCommand::Get { tenant, key, json } => {
            let conn = open(config).await?;
            let current = settings::Settings::from(&tenants::find(&conn, &tenant).await?.settings);
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
            let value = key
                .parse_text(&value)
                .map_err(|e| Failure::usage(format!("{}: {}", key.kebab(), e.message)))?;
            let conn = open(config).await?;
            let tenant = tenants::find(&conn, &tenant).await?;
            let updated =
                settings::update(&conn, tenant.id, &[(key, value)], &audit::cli_actor()).await?;
            out_raw(&format!("{} = {}\n", key.kebab(), key.show(&updated)));
            Ok(())
        }
    }
}

/// The keys as clap sees them: `--help` lists every key of [`Key::ALL`] with what it
/// accepts (so the list cannot drift from the keys), and an unknown key is a usage error.
/// The API's camelCase names are accepted too.
impl clap::ValueEnum for Key {
    fn value_variants<'a>() -> &'a [Self] {
        &Key::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(
            clap::builder::PossibleValue::new(self.kebab())
                .alias(self.camel())
                .help(self.expected()),
        )
    }
}
