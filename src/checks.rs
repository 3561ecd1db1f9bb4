//! Start-up checks of every setting, run by `serve` and every command before anything else
//! happens (before `serve` binds or logs "listening"), so a bad value stops the process
//! with one line instead of failing later in a background task.

use crate::config::{Config, variable_of};
use std::path::Path;

/// Why the configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// A value does not parse or is out of range (exit status 2).
    #[error("configuration error: {0}")]
    Malformed(String),
    /// A value is well formed but names something unusable, e.g. a key file that cannot be
    /// read (exit status 1).
    #[error("configuration error: {0}")]
    Unusable(String),
}

impl CheckError {
    /// The exit status of the command line: 2 malformed, 1 unusable.
    pub fn exit_code(&self) -> u8 {
        match self {
            CheckError::Malformed(_) => 2,
            CheckError::Unusable(_) => 1,
        }
    }
}

fn malformed(path: &str, message: impl std::fmt::Display) -> CheckError {
    CheckError::Malformed(format!("{path} ({}): {message}", variable_of(path)))
}

fn at_least(path: &str, value: u64, low: u64) -> Result<(), CheckError> {
    if value < low {
        return Err(malformed(
            path,
            format!("{value} is too small; at least {low}"),
        ));
    }
    Ok(())
}

fn readable(path: &str, file: &str) -> Result<(), CheckError> {
    if file.trim().is_empty() {
        return Ok(());
    }
    std::fs::File::open(Path::new(file.trim()))
        .map(drop)
        .map_err(|e| {
            CheckError::Unusable(format!(
                "{path} ({}): cannot read {file}: {e}",
                variable_of(path)
            ))
        })
}

fn http_url(path: &str, value: &str) -> Result<(), CheckError> {
    let url = reqwest::Url::parse(value.trim())
        .map_err(|e| malformed(path, format!("'{value}' is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(malformed(
            path,
            format!("'{value}' must be an http:// or https:// URL"),
        ));
    }
    Ok(())
}

/// The address `serve` would listen on: an IP address and port, or `HOST:PORT`.
pub fn check_bind(bind: &str) -> Result<(), CheckError> {
    use std::net::ToSocketAddrs;
    if bind.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let fits = bind
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if fits && bind.to_socket_addrs().is_ok_and(|mut a| a.next().is_some()) {
        return Ok(());
    }
    Err(CheckError::Malformed(format!(
        "the listen address '{bind}' is not HOST:PORT (e.g. 127.0.0.1:8080 or 0.0.0.0:8080); set --bind or server.bind ({})",
        variable_of("server.bind")
    )))
}

/// Checks every setting; `bind` is `serve --bind` when given.
pub fn check(config: &Config, bind: Option<&str>) -> Result<(), CheckError> {
    check_bind(bind.unwrap_or(&config.server.bind))?;
    at_least(
        "server.request_timeout_seconds",
        config.server.request_timeout_seconds,
        1,
    )?;

    let url = config.database.url.trim();
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        return Err(CheckError::Malformed(format!(
            "DATABASE_URL must start with sqlite:// or postgres://, not '{}'",
            crate::config::redact_url(url)
        )));
    }
    at_least(
        "database.connect_timeout_seconds",
        config.database.connect_timeout_seconds,
        1,
    )?;
    // 0 would mean "wait forever" to PostgreSQL's lock_timeout.
    at_least(
        "database.request_busy_timeout_ms",
        config.database.request_busy_timeout_ms,
        1,
    )?;

    let import = &config.import;
    at_least("import.max_file_bytes", import.max_file_bytes, 1)?;
    at_least("import.max_record_bytes", import.max_record_bytes as u64, 1)?;
    at_least("import.max_field_bytes", import.max_field_bytes as u64, 1)?;
    at_least("import.error_cap", import.error_cap as u64, 1)?;
    at_least("import.batch_rows", import.batch_rows as u64, 1)?;

    crate::domain::Region::parse(&config.tenant_defaults.region)
        .map_err(|e| malformed("tenant_defaults.region", e))?;
    if !(0..=100).contains(&config.tenant_defaults.deletion_guard_percent) {
        return Err(malformed(
            "tenant_defaults.deletion_guard_percent",
            "a percentage from 0 to 100",
        ));
    }

    if !matches!(config.log.format.as_str(), "pretty" | "json") {
        return Err(malformed(
            "log.format",
            format!("'{}' is not pretty or json", config.log.format),
        ));
    }
    tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .map_err(|e| malformed("log.level", format!("'{}': {e}", config.log.level)))?;

    crate::web::oidc::Settings::from_config(&config.web)
        .map_err(|e| malformed(&e.key, e.message))?;
    crate::outbox::email::MailTarget::parse(&config.mail.url)
        .map_err(|e| CheckError::Malformed(format!("MAIL_URL: {e}")))?;
    config
        .mail
        .from
        .parse::<lettre::message::Mailbox>()
        .map_err(|e| malformed("mail.from", format!("'{}': {e}", config.mail.from)))?;
    readable(
        "mail.tls_root_certificate",
        &config.mail.tls_root_certificate,
    )?;
    use crate::outbox::email::{DkimError, DkimSettings};
    DkimSettings::from_config(&config.mail).map_err(|e| match e {
        DkimError::Unreadable { .. } => CheckError::Unusable(e.to_string()),
        DkimError::Partial => malformed("mail.dkim_selector", e),
        DkimError::BadKey { .. } => malformed("mail.dkim_private_key_path", e),
    })?;
    at_least("mail.pool_size", config.mail.pool_size as u64, 1)?;

    crate::outbox::sms::SmsGateway::from_config(&config.sms, &config.outbound)
        .map_err(CheckError::Malformed)?;
    http_url("web.public_url", &config.web.public_url)?;
    if !config.invites.join_url.trim().is_empty() {
        http_url("invites.join_url", &config.invites.join_url)?;
    }

    let outbox = &config.outbox;
    at_least("outbox.batch_size", outbox.batch_size, 1)?;
    at_least("outbox.concurrency", outbox.concurrency as u64, 1)?;
    at_least("outbox.max_attempts", outbox.max_attempts.max(0) as u64, 1)?;
    at_least("outbox.email_per_second", outbox.email_per_second.into(), 1)?;
    at_least("outbox.sms_per_second", outbox.sms_per_second.into(), 1)?;
    at_least(
        "digest.check_interval_seconds",
        config.digest.check_interval_seconds,
        1,
    )?;

    let auth = &config.auth;
    for file in &auth.rs256_public_key_paths {
        readable("auth.rs256_public_key_paths", file)?;
    }
    readable("auth.jwks_path", &auth.jwks_path)?;
    readable("auth.signing_key_path", &auth.signing_key_path)?;
    crate::auth::keys::Verifier::from_config(auth)
        .map_err(|e| CheckError::Malformed(e.to_string()))?;
    if !auth.signing_key_path.is_empty() {
        crate::auth::mint::SigningKey::from_config(auth)
            .map_err(|e| malformed("auth.signing_key_path", e))?;
    }
    crate::auth::mint::parse_ttl(&auth.default_token_ttl)
        .map_err(|e| malformed("auth.default_token_ttl", e))?;

    let api = &config.api;
    at_least("api.max_body_bytes", api.max_body_bytes as u64, 1)?;
    at_least("api.max_upload_bytes", api.max_upload_bytes as u64, 1)?;
    at_least("api.default_page_size", api.default_page_size, 1)?;
    if api.default_page_size > api.max_page_size {
        return Err(malformed(
            "api.default_page_size",
            format!("larger than api.max_page_size ({})", api.max_page_size),
        ));
    }
    at_least(
        "api.client_requests_per_second",
        api.client_requests_per_second,
        1,
    )?;
    at_least(
        "api.token_requests_per_second",
        api.token_requests_per_second,
        1,
    )?;
    crate::api::limits::client::TrustedProxies::parse(&api.trusted_proxies)
        .map_err(|e| malformed("api.trusted_proxies", e))?;
    crate::api::limits::client::ClientHeader::parse(&api.client_address_header)
        .map_err(|e| malformed("api.client_address_header", e))?;

    let oneroster = &config.oneroster;
    if !oneroster.secret_key.trim().is_empty() {
        crate::sync::oneroster::connection::SecretKey::from_hex(&oneroster.secret_key)
            .map_err(|e| malformed("oneroster.secret_key", e))?;
    }
    at_least(
        "oneroster.default_page_size",
        oneroster.default_page_size,
        1,
    )?;
    if oneroster.default_page_size > oneroster.max_page_size {
        return Err(malformed(
            "oneroster.default_page_size",
            format!(
                "larger than oneroster.max_page_size ({})",
                oneroster.max_page_size
            ),
        ));
    }
    at_least(
        "oneroster.request_timeout_seconds",
        oneroster.request_timeout_seconds,
        1,
    )?;
    at_least(
        "oneroster.connect_timeout_seconds",
        oneroster.connect_timeout_seconds,
        1,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_and_each_bad_value_is_one_line() {
        let defaults = Config::defaults().unwrap();
        assert_eq!(check(&defaults, None), Ok(()));
        assert_eq!(check(&defaults, Some("localhost:0")), Ok(()));
        type Case = (fn(&mut Config), &'static str, u8);
        let cases: Vec<Case> = vec![
            (|c| c.server.bind = "8080".into(), "listen address", 2),
            (
                |c| c.server.bind = "127.0.0.1:99999".into(),
                "listen address",
                2,
            ),
            (|c| c.database.url = "mysql://x/y".into(), "DATABASE_URL", 2),
            (|c| c.mail.url = "smtp:/x".into(), "MAIL_URL", 2),
            (|c| c.mail.url = "http://x".into(), "MAIL_URL", 2),
            (|c| c.sms.url = "ftp://gateway".into(), "SMS_URL", 2),
            (
                |c| c.invites.join_url = "join".into(),
                "invites.join_url",
                2,
            ),
            (
                |c| c.web.public_url = "localhost".into(),
                "web.public_url",
                2,
            ),
            (
                |c| {
                    c.mail.dkim_selector = "s1".into();
                    c.mail.dkim_domain = "example.org".into();
                    c.mail.dkim_private_key_path = "/no/such/dkim.pem".into();
                },
                "/no/such/dkim.pem",
                1,
            ),
            (|c| c.mail.dkim_selector = "s1".into(), "or none of them", 2),
            (
                |c| {
                    c.mail.dkim_selector = "s1".into();
                    c.mail.dkim_domain = "example.org".into();
                    c.mail.dkim_private_key_path =
                        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml").into();
                },
                "not an RSA PKCS#1 PEM key",
                2,
            ),
            (
                |c| c.log.format = "xml".into(),
                "PARENT_CONNECTION__LOG__FORMAT",
                2,
            ),
            (|c| c.log.level = "info,=x=y".into(), "log.level", 2),
            (
                |c| c.tenant_defaults.region = "XX".into(),
                "tenant_defaults.region",
                2,
            ),
            (
                |c| c.auth.algorithms = vec!["none".into()],
                "auth.algorithms",
                2,
            ),
            (
                |c| c.auth.default_token_ttl = "60d".into(),
                "default_token_ttl",
                2,
            ),
            (|c| c.oneroster.secret_key = "abc".into(), "secret_key", 2),
            (|c| c.outbox.batch_size = 0, "outbox.batch_size", 2),
            (
                |c| c.api.trusted_proxies = vec!["10.0.0.0/8".into(), "10.0.0.1/8".into()],
                "api.trusted_proxies",
                2,
            ),
            (
                |c| c.api.trusted_proxies = vec!["proxy.internal".into()],
                "PARENT_CONNECTION__API__TRUSTED_PROXIES",
                2,
            ),
            (
                |c| c.api.client_address_header = "x-real-ip".into(),
                "api.client_address_header",
                2,
            ),
            (
                |c| c.auth.jwks_path = "/no/such/jwks.json".into(),
                "/no/such/jwks.json",
                1,
            ),
            (
                |c| c.mail.tls_root_certificate = "/no/such/ca.pem".into(),
                "/no/such/ca.pem",
                1,
            ),
        ];
        for (change, expect, code) in cases {
            let mut config = defaults.clone();
            change(&mut config);
            let error = check(&config, None).unwrap_err();
            let line = error.to_string();
            assert!(
                line.contains(expect) && !line.contains('\n') && error.exit_code() == code,
                "{expect}: {line} ({})",
                error.exit_code()
            );
        }
    }
}
