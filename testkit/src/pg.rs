//! A fresh PostgreSQL database per run: created on the server of an admin URL (a role that
//! may `CREATE DATABASE`), used through its own URL, dropped at the end.

use anyhow::{Context, Result, bail};
use sea_orm::sqlx::{self, AssertSqlSafe, Connection, Executor, PgConnection, Row};

/// `url` with its database (path) replaced by `name`, keeping user, host and parameters.
pub fn with_database(url: &str, name: &str) -> Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let Some((scheme, rest)) = base.split_once("://") else {
        bail!("'{}' is not a postgres:// URL", redact_url(url));
    };
    if scheme != "postgres" && scheme != "postgresql" {
        bail!("'{}' is not a postgres:// URL", redact_url(url));
    }
    let authority = rest
        .split_once('/')
        .map_or(rest, |(authority, _)| authority);
    let mut out = format!("{scheme}://{authority}/{name}");
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

/// Replaces the password of a URL (`scheme://user:password@host`) with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// A database name this module will put into SQL: letters, digits and `_` only.
fn checked(name: &str) -> Result<&str> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("'{name}' is not a database name (letters, digits and '_' only)");
    }
    Ok(name)
}

async fn admin(admin_url: &str) -> Result<PgConnection> {
    PgConnection::connect(admin_url)
        .await
        .with_context(|| format!("cannot connect to {}", redact_url(admin_url)))
}

async fn drop_on(admin: &mut PgConnection, name: &str) -> Result<()> {
    // FORCE first: it ends the sessions of our own role still connected (a test's pool
    // lives until its last clone is dropped), where a plain DROP would wait five seconds
    // for them and fail. FORCE may not terminate an autovacuum worker busy in the database
    // (after a large load it often is) for a role that is not a superuser; a plain DROP
    // then makes PostgreSQL stop that worker itself.
    let forced = admin
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .await;
    if forced.is_ok() {
        return Ok(());
    }
    admin
        .execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\"")))
        .await
        .with_context(|| format!("cannot drop database {name}"))?;
    Ok(())
}

/// Creates the empty database `name` on the server of `admin_url` (an old one of that name
/// is dropped first) and returns its URL.
pub async fn create_database(admin_url: &str, name: &str) -> Result<String> {
    let name = checked(name)?;
    let url = with_database(admin_url, name)?;
    let mut admin = admin(admin_url).await?;
    drop_on(&mut admin, name).await?;
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .await
        .with_context(|| format!("cannot create database {name}"))?;
    admin.close().await.ok();
    Ok(url)
}

/// Drops the database `name` (ending its sessions) when it exists.
pub async fn drop_database(admin_url: &str, name: &str) -> Result<()> {
    let name = checked(name)?;
    let mut admin = admin(admin_url).await?;
    let dropped = drop_on(&mut admin, name).await;
    admin.close().await.ok();
    dropped
}

/// [`drop_database`] from synchronous code (a `Drop` implementation, maybe inside a
/// runtime): on a thread of its own with a runtime of its own; errors are ignored.
pub fn drop_database_blocking(admin_url: &str, name: &str) {
    let (admin_url, name) = (admin_url.to_string(), name.to_string());
    let _ = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        let _ = runtime.block_on(drop_database(&admin_url, &name));
    })
    .join();
}

/// Whether the server of `admin_url` has a database `name`.
pub async fn database_exists(admin_url: &str, name: &str) -> Result<bool> {
    let mut admin = admin(admin_url).await?;
    let row = sqlx::query("SELECT COUNT(*) AS n FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .context("cannot list the server's databases")?;
    let count: i64 = row.try_get("n").unwrap_or(0);
    admin.close().await.ok();
    Ok(count > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://pc:pc@127.0.0.1:5432/postgres", "b1").unwrap(),
            "postgres://pc:pc@127.0.0.1:5432/b1"
        );
        assert_eq!(
            with_database("postgresql://h/db?sslmode=disable", "b1").unwrap(),
            "postgresql://h/b1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h", "b1").unwrap(),
            "postgres://h/b1"
        );
        assert!(with_database("sqlite://x.db", "b1").is_err());
    }

    #[test]
    fn hides_the_password() {
        assert_eq!(
            redact_url("postgres://pc:secret@h:5432/db"),
            "postgres://pc:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn database_names_are_plain() {
        assert!(checked("t_0123abc").is_ok());
        for bad in ["", "a-b", "a\"b", "a;DROP"] {
            assert!(checked(bad).is_err(), "{bad}");
        }
    }
}
