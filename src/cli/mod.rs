//! The command line (`parent-connection --help`). Each command prints its result on standard
//! output and exits 0, or prints a one-line reason on standard error and exits non-zero:
//! 2 for a malformed value (an option, a setting's value, a configuration value) or an
//! import whose snapshot was refused, 1 when the command could not run (a missing folder,
//! the database unreachable, a tenant that does not exist).

pub mod digest;
pub mod oneroster;
pub mod progress;

use crate::config::Config;
use crate::contacts;
use crate::domain::{Region, TenantSlug};
use crate::sync::{self, Format, ImportRequest};
use crate::{audit, db, tenants};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Parent Connection: connects teachers with the parents and guardians of their students.
///
/// Configuration comes from config/default.toml (compiled in), an optional file named by
/// PARENT_CONNECTION_CONFIG, and environment variables PARENT_CONNECTION__<SECTION>__<KEY>;
/// DATABASE_URL selects the database (default: a SQLite file under data/).
#[derive(Debug, Parser)]
#[command(name = "parent-connection", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (migrates the database first).
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8080 (default: server.bind).
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage tenants (school districts).
    Tenant {
        /// Tenant command.
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Import an SDS file set (a full snapshot) for a tenant.
    ///
    /// The snapshot applies all-or-nothing: any error in any file refuses the whole run and
    /// leaves the database as it was. Links absent from the snapshot become inactive; a run
    /// that would deactivate more than the tenant's deletion guard (default 20% of active
    /// links) is refused unless --force. Exit status: 0 applied (or would be, with
    /// --dry-run), 2 refused, 1 could not run.
    Import {
        /// Tenant slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// File format of the folder.
        #[arg(long, value_enum)]
        format: Format,
        /// Folder holding the CSV files.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Check and count everything, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply even when the deletion guards would refuse.
        #[arg(long)]
        force: bool,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a student's contacts: by default what a teacher sees (active parents and
    /// guardians); --all adds every role and status with provenance.
    Contacts {
        /// Tenant slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// The student's SIS id (sourcedId).
        #[arg(long, value_name = "SOURCE_ID")]
        student: String,
        /// Every role and status, with provenance (the admin view).
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mint a development bearer token for the HTTP API and print it.
    ///
    /// Signs with the development key JWT_SECRET (HS256). Refuses to sign with a key that is
    /// not a development key (auth.signing_key_path, or HS256 not accepted by
    /// auth.algorithms) unless --force.
    #[command(group(clap::ArgGroup::new("who").required(true).args(["user", "app", "contact"])))]
    Token {
        /// Tenant slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// A person: their SIS source id (staff sourcedId); needs --role.
        #[arg(long, value_name = "SOURCE_ID", requires = "role")]
        user: Option<String>,
        /// Role of the person (repeatable): teacher, global-admin, teams-admin, tenant-admin.
        #[arg(long, value_name = "ROLE", requires = "user")]
        role: Vec<crate::auth::Role>,
        /// An app-only credential; needs --scope.
        #[arg(long, requires = "scope")]
        app: bool,
        /// The app's id (the token's subject).
        #[arg(
            long,
            value_name = "APP_ID",
            default_value = "dev-app",
            requires = "app"
        )]
        app_id: String,
        /// Scope of the app (repeatable), e.g. EduRoster.Read.All.
        #[arg(long, value_name = "SCOPE", requires = "app")]
        scope: Vec<crate::auth::Scope>,
        /// A parent or guardian: the contact id.
        #[arg(long, value_name = "CONTACT_ID")]
        contact: Option<String>,
        /// Lifetime: 90s, 15m, 1h, 7d, at most 30 days (default auth.default_token_ttl).
        #[arg(long, value_name = "DURATION", value_parser = crate::auth::mint::parse_ttl)]
        ttl: Option<std::time::Duration>,
        /// Sign even with a key that is not a development key.
        #[arg(long)]
        force: bool,
    },
    /// Deliver queued messages (invitations) from the outbox: with --once, until nothing is
    /// due, then exit; without, keep running (`serve` runs a dispatcher too, unless
    /// outbox.dispatch_in_serve is false). Several dispatchers may share one database.
    Dispatch {
        /// Send what is due now, then exit.
        #[arg(long)]
        once: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read or change a tenant's settings (keys in kebab-case, e.g.
    /// preferred-invite-channel, update-parent-information, digest-enabled).
    Settings {
        /// Settings command.
        #[command(subcommand)]
        command: settings::SettingsCommand,
    },
    /// Manage the tenant's OneRoster 1.1 REST connection.
    Oneroster {
        /// OneRoster command.
        #[command(subcommand)]
        command: oneroster::OneRosterCommand,
    },
    /// Sync from a connected provider (`sync oneroster`).
    Sync {
        /// Source to sync from.
        #[command(subcommand)]
        command: oneroster::SyncCommand,
    },
    /// Load a tenant's assignments in bulk (`assignments import`).
    Assignments {
        /// Assignments command.
        #[command(subcommand)]
        command: digest::AssignmentsCommand,
    },
    /// The weekly assignment digest (`digest run`, `digest unsubscribes`, `digest resubscribe`).
    Digest {
        /// Digest command.
        #[command(subcommand)]
        command: digest::DigestCommand,
    },
    /// Per-child restrictions of a contact: custody, court orders (`restriction add`,
    /// `restriction lift`, `restriction list`).
    Restriction {
        /// Restriction command.
        #[command(subcommand)]
        command: restrictions::RestrictionCommand,
    },
}

/// `tenant` subcommands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant with default settings.
    Create {
        /// Short name: lower-case letters, digits and '-'.
        #[arg(value_name = "SLUG")]
        slug: String,
        /// Display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
        /// Two-letter region for reading national phone numbers (default: tenant_defaults.region).
        #[arg(long)]
        region: Option<String>,
    },
}

/// Writes a line to standard output, ignoring a closed pipe (`… | head` must not panic).
macro_rules! out {
    ($($arg:tt)*) => {
        out_raw(&format!("{}\n", format_args!($($arg)*)))
    };
}

fn out_raw(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

mod restrictions;
mod settings;

/// A failure with the exit status to use.
struct Failure {
    code: u8,
    message: String,
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Self {
            code: 1,
            message: e.to_string(),
        }
    }
}

impl Failure {
    /// A malformed value given by the user: exit status 2.
    fn usage(e: impl std::fmt::Display) -> Self {
        Self {
            code: 2,
            message: e.to_string(),
        }
    }
}

/// A command-line usage error as one line (clap's own message runs over several: the
/// reason, then the usage and a hint).
fn usage_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let reason: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .filter(|line| !line.is_empty())
        .collect();
    let reason = reason.join(" ");
    let reason = reason.strip_prefix("error: ").unwrap_or(&reason);
    format!("{reason} (see --help)")
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help, --version, and no subcommand at all: clap's own text.
        Err(e)
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            e.exit()
        }
        Err(e) => {
            eprintln!("parent-connection: {}", usage_line(&e));
            return ExitCode::from(2);
        }
    };
    let loaded = match Config::load_from(crate::config::process_env()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("parent-connection: {e}");
            return ExitCode::from(2);
        }
    };
    let config = loaded.config;
    crate::tls::install_crypto_provider();
    let bind = match &cli.command {
        Command::Serve { bind } => bind.as_deref(),
        _ => None,
    };
    if let Err(e) = crate::checks::check(&config, bind) {
        eprintln!("parent-connection: {e}");
        return ExitCode::from(e.exit_code());
    }
    init_logging(&config, matches!(cli.command, Command::Serve { .. }));
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("parent-connection: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let line = failure
                .message
                .lines()
                .next()
                .unwrap_or("failed")
                .to_string();
            eprintln!("parent-connection: {line}");
            ExitCode::from(failure.code)
        }
    }
}

fn init_logging(config: &Config, serving: bool) {
    let default = if serving {
        config.log.level.clone()
    } else {
        "warn".to_string()
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour codes only on a terminal: a file, a pipe or a log collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if config.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(command: Command, config: Config) -> Result<(), Failure> {
    match command {
        Command::Serve { bind } => crate::server::serve(config, bind)
            .await
            .map_err(Failure::from),
        Command::Migrate => {
            let conn = db::connect(&config.database).await?;
            let (applied, total) = db::migrate_reporting(&conn).await?;
            ensure_privacy_key(&config)?;
            for name in &applied {
                out!("applied {name}");
            }
            if applied.is_empty() {
                out!("database is up to date ({total} migrations)");
            } else {
                out!(
                    "database is up to date ({total} migrations, {} applied now)",
                    applied.len()
                );
            }
            Ok(())
        }
        Command::Tenant {
            command: TenantCommand::Create { slug, name, region },
        } => {
            let slug = TenantSlug::parse(&slug).map_err(Failure::usage)?;
            let region = Region::parse(region.as_deref().unwrap_or(&config.tenant_defaults.region))
                .map_err(Failure::usage)?;
            let conn = open(&config).await?;
            let name = name.unwrap_or_else(|| slug.to_string());
            let tenant = tenants::create(
                &conn,
                &slug,
                &name,
                region,
                config.tenant_defaults.deletion_guard_percent,
                &audit::cli_actor(),
            )
            .await?;
            out!(
                "created tenant {} ({}, region {})",
                tenant.slug,
                tenant.name,
                tenant.region.code()
            );
            Ok(())
        }
        Command::Import {
            tenant,
            format,
            dir,
            dry_run,
            force,
            json,
        } => {
            if !dir.is_dir() {
                return Err(Failure::from(format!(
                    "the import folder {} does not exist or is not a folder",
                    dir.display()
                )));
            }
            let conn = open(&config).await?;
            let request = ImportRequest {
                tenant,
                format,
                dir,
                source: None,
                dry_run,
                force,
                actor: audit::cli_actor(),
                privacy: crate::privacy::PrivacyKey::from_config(&config)
                    .map_err(|e| Failure::from(e.to_string()))?,
            };
            let bar = Arc::new(progress::ImportBar::new());
            let report = sync::import(&conn, &config.import, &request, bar).await?;
            if json {
                out!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                out_raw(&report.to_human());
            }
            if report.status.is_success() {
                Ok(())
            } else {
                let reason = report
                    .errors
                    .first()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "refused".into());
                Err(Failure {
                    code: 2,
                    message: format!(
                        "import refused ({} error(s)); first: {reason}",
                        report.errors.len()
                    ),
                })
            }
        }
        Command::Contacts {
            tenant,
            student,
            all,
            json,
        } => {
            let conn = open(&config).await?;
            let tenant = tenants::find(&conn, &tenant).await?;
            let scope = if all {
                contacts::Scope::Admin
            } else {
                contacts::Scope::Guardians
            };
            let items = contacts::for_student(&conn, tenant.id, &student, &scope).await?;
            if json {
                out!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                print_contacts(&items, all);
            }
            Ok(())
        }
        Command::Token {
            tenant,
            user,
            role,
            app,
            app_id,
            scope,
            contact,
            ttl,
            force,
        } => {
            use crate::auth::mint::{self, SigningKey, Subject};
            let key = SigningKey::from_config(&config.auth)?;
            key.check(force)?;
            let slug = TenantSlug::parse(&tenant).map_err(Failure::usage)?;
            let ttl = match ttl {
                Some(ttl) => ttl,
                None => mint::parse_ttl(&config.auth.default_token_ttl).map_err(Failure::usage)?,
            };
            let max = mint::parse_max_lifetime(&config.auth.max_token_lifetime)
                .map_err(Failure::usage)?;
            if ttl > max {
                return Err(Failure::usage(format!(
                    "--ttl {}s is longer than auth.max_token_lifetime ({}): tokens that long are refused",
                    ttl.as_secs(),
                    config.auth.max_token_lifetime
                )));
            }
            let subject = match (user, contact) {
                (Some(source_id), _) => Subject::User {
                    source_id,
                    roles: role,
                },
                (None, Some(contact_id)) => Subject::Contact { contact_id },
                (None, None) if app => Subject::App {
                    app_id,
                    scopes: scope,
                },
                (None, None) => {
                    return Err("say who the token is for: --user, --app or --contact".into());
                }
            };
            let conn = open(&config).await?;
            tenants::find(&conn, slug.as_str()).await?;
            let claims = mint::claims(&config.auth, slug.as_str(), &subject, ttl);
            out!("{}", mint::sign(&key, &claims)?);
            Ok(())
        }
        Command::Settings { command } => settings::run(command, &config).await,
        Command::Dispatch { once, json } => dispatch(&config, once, json).await,
        Command::Oneroster { command } => oneroster::connect(command, &config).await,
        Command::Sync { command } => oneroster::sync(command, &config).await,
        Command::Assignments { command } => digest::assignments(command, &config).await,
        Command::Digest { command } => digest::run(command, &config).await,
        Command::Restriction { command } => restrictions::run(command, &config).await,
    }
}

/// `dispatch [--once]`.
async fn dispatch(config: &Config, once: bool, json: bool) -> Result<(), Failure> {
    let conn = open(config).await?;
    let dispatcher = crate::server::dispatcher(conn, config)?;
    if !json {
        eprintln!("dispatching: {}", dispatcher.describe());
    }
    if once {
        let stats = dispatcher.drain().await?;
        if json {
            out!("{}", serde_json::to_string_pretty(&stats)?);
        } else {
            out!(
                "claimed {}, sent {}, retry later {}, failed {}, dead {}, suppressed {}",
                stats.claimed,
                stats.sent,
                stats.retried,
                stats.failed,
                stats.dead,
                stats.suppressed
            );
        }
        return Ok(());
    }
    let (stop, stopped) = crate::outbox::dispatcher::StopSwitch::new();
    let running = tokio::spawn(Arc::new(dispatcher).run(stopped));
    crate::server::stop_requested().await;
    stop.stop();
    crate::server::stop_dispatcher(
        running,
        std::time::Duration::from_secs(config.outbox.shutdown_grace_seconds),
    )
    .await;
    Ok(())
}

/// Connects and applies pending migrations (so a fresh SQLite file just works).
async fn open(config: &Config) -> Result<sea_orm::DatabaseConnection, Failure> {
    let conn = db::connect(&config.database).await?;
    if config.database.migrate_on_start {
        db::migrate(&conn).await?;
    }
    ensure_privacy_key(config)?;
    Ok(conn)
}

/// On SQLite the privacy key is made with the database (and announced once, by the first
/// command), not by whichever later command first hashes something.
fn ensure_privacy_key(config: &Config) -> Result<(), Failure> {
    if crate::secrets::DataFolder::of(&config.database).is_some() {
        crate::privacy::PrivacyKey::from_config(config)
            .map_err(|e| Failure::from(e.to_string()))?;
    }
    Ok(())
}

fn print_contacts(items: &[contacts::ContactItem], all: bool) {
    if items.is_empty() {
        out!("no contacts");
        return;
    }
    for item in items {
        let mut line = format!(
            "{:<28} {:<10} {:<8} {:<32} {}",
            item.display_name,
            item.relationship,
            item.status,
            item.email_address.as_deref().unwrap_or("-"),
            item.mobile_phone.as_deref().unwrap_or("-")
        );
        if all && let Some(p) = &item.provenance {
            line.push_str(&format!(
                "  [email: {}]",
                p.email_address.source.as_deref().unwrap_or("-")
            ));
        }
        if let Some(r) = &item.restriction {
            line.push_str(&format!("  [restricted: {}]", r.reason));
        }
        out!("{}", line.trim_end());
    }
}
