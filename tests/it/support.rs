//! Test harness: a fresh database per test (a SQLite file in a temp dir, or a new
//! PostgreSQL database on the server named by TEST_DATABASE_URL), fixtures copied into a
//! temp dir so tests can alter them, and helpers to run imports and read the database.

#![allow(dead_code)]

use parent_connection::config::Config;
use parent_connection::domain::{Region, TenantSlug};
use parent_connection::sync::report::{ImportReport, Issue};
use parent_connection::sync::{self, Format, ImportRequest, NoProgress};
use parent_connection::{db, tenants};
use parent_connection_testkit::pg;
use sea_orm::{DatabaseConnection, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `sqlite` and `postgres` test modules calling each listed `async fn(Backend)`.
#[macro_export]
macro_rules! db_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(
                    not(test_postgres),
                    ignore = "TEST_DATABASE_URL was not set when the tests were built: no PostgreSQL server"
                )]
                async fn $name() {
                    if $crate::support::postgres_url().is_none() {
                        return;
                    }
                    super::$name($crate::support::Backend::Postgres).await
                }
            )*
        }
    };
}

/// The PostgreSQL server URL for tests; panics when REQUIRE_POSTGRES is set but it is not.
pub fn postgres_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("REQUIRE_POSTGRES").is_ok() {
                panic!("REQUIRE_POSTGRES is set but TEST_DATABASE_URL is not");
            }
            eprintln!("TEST_DATABASE_URL unset: PostgreSQL variant skipped");
            None
        }
    }
}

/// A fresh, migrated database, dropped at the end of the test.
pub struct TestDb {
    pub conn: DatabaseConnection,
    pub url: String,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
    pg_drop: Option<(String, String)>,
}

/// With `TEST_LOG` set (a filter such as `info` or `parent_connection=debug`), the
/// service's logs of in-process tests are printed with each test's output (`cargo test`
/// shows them for failing tests, or for all with `-- --nocapture`). Called by every test
/// database; safe to call again.
pub fn show_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        show_logs();
        let (url, dir, pg_drop) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                (url, Some(dir), None)
            }
            Backend::Postgres => {
                let admin_url = postgres_url().expect("TEST_DATABASE_URL");
                let name = format!("t_{}", uuid::Uuid::new_v4().simple());
                let url = pg::create_database(&admin_url, &name)
                    .await
                    .expect("create test database on TEST_DATABASE_URL");
                (url, None, Some((admin_url, name)))
            }
        };
        let mut config = config();
        config.database.url = url.clone();
        let conn = db::connect(&config.database).await.expect("connect");
        db::migrate(&conn).await.expect("migrate");
        Self {
            conn,
            url,
            backend,
            _dir: dir,
            pg_drop,
        }
    }

    /// Creates a tenant with default settings.
    pub async fn tenant(&self, slug: &str) -> tenants::Tenant {
        self.tenant_in(slug, "US").await
    }

    /// Creates a tenant with a phone region.
    pub async fn tenant_in(&self, slug: &str, region: &str) -> tenants::Tenant {
        tenants::create(
            &self.conn,
            &TenantSlug::parse(slug).unwrap(),
            slug,
            Region::parse(region).unwrap(),
            20,
            "test",
        )
        .await
        .expect("create tenant")
    }

    /// Runs an import and returns its report.
    pub async fn import(
        &self,
        tenant: &str,
        format: Format,
        dir: &Path,
        options: Options,
    ) -> ImportReport {
        self.try_import(tenant, format, dir, options)
            .await
            .expect("import ran")
    }

    /// Runs an import: its report, or why it could not run.
    pub async fn try_import(
        &self,
        tenant: &str,
        format: Format,
        dir: &Path,
        options: Options,
    ) -> Result<ImportReport, sync::SyncError> {
        let request = ImportRequest {
            tenant: tenant.into(),
            format,
            dir: dir.to_path_buf(),
            source: None,
            dry_run: options.dry_run,
            force: options.force,
            actor: "test".into(),
            privacy: parent_connection::privacy::PrivacyKey::from_hex(PRIVACY_KEY).unwrap(),
        };
        let config = config().import;
        sync::import(&self.conn, &config, &request, Arc::new(NoProgress)).await
    }

    /// One text column per row of `sql`, in order.
    pub async fn texts(&self, sql: &str, values: Vec<Value>) -> Vec<String> {
        db::query(&self.conn, sql, values)
            .await
            .expect("query")
            .iter()
            .map(|row| {
                row.try_get_by_index::<Option<String>>(0)
                    .expect("text column")
                    .unwrap_or_else(|| "NULL".into())
            })
            .collect()
    }

    /// Runs a statement.
    pub async fn exec(&self, sql: &str) {
        db::exec(&self.conn, sql, vec![]).await.expect("statement");
    }

    /// A count.
    pub async fn count(&self, sql: &str) -> i64 {
        db::count(&self.conn, sql, vec![]).await.expect("count")
    }

    /// Every row of roster and contact data as text: equal fingerprints mean an unchanged
    /// database (sync_runs and audit_log are bookkeeping and left out).
    pub async fn fingerprint(&self) -> Vec<String> {
        let tables = [
            ("tenants", "slug || '|' || region"),
            (
                "schools",
                "source_id || '|' || COALESCE(name, '') || '|' || status || '|' || CAST(updated_at AS TEXT)",
            ),
            (
                "students",
                "source_id || '|' || COALESCE(given_name, '') || '|' || status || '|' || CAST(updated_at AS TEXT)",
            ),
            (
                "staff",
                "source_id || '|' || role || '|' || status || '|' || CAST(updated_at AS TEXT)",
            ),
            (
                "classes",
                "source_id || '|' || COALESCE(title, '') || '|' || status || '|' || CAST(updated_at AS TEXT)",
            ),
            (
                "enrollments",
                "CAST(class_id AS TEXT) || '|' || role || '|' || CAST(person_id AS TEXT) || '|' || status",
            ),
            (
                "contacts",
                "source_key || '|' || COALESCE(email, '') || '|' || COALESCE(mobile_phone, '') || '|' || COALESCE(given_name, '') || '|' || COALESCE(email_sync, '') || '|' || CAST(updated_at AS TEXT)",
            ),
            (
                "student_contacts",
                "CAST(student_id AS TEXT) || '|' || CAST(contact_id AS TEXT) || '|' || relationship || '|' || status || '|' || CAST(updated_at AS TEXT)",
            ),
        ];
        let mut out = Vec::new();
        for (table, expr) in tables {
            for row in self
                .texts(&format!("SELECT {expr} FROM {table} ORDER BY id"), vec![])
                .await
            {
                out.push(format!("{table}: {row}"));
            }
        }
        out
    }

    /// `(relationship, status)` of the link between a student and a contact key.
    pub async fn link(&self, student: &str, contact_key: &str) -> Option<(String, String)> {
        let rows = db::query(
            &self.conn,
            "SELECT l.relationship, l.status FROM student_contacts l JOIN students s ON s.id = l.student_id \
             JOIN contacts c ON c.id = l.contact_id WHERE s.source_id = $1 AND c.source_key = $2",
            vec![student.into(), contact_key.into()],
        )
        .await
        .expect("query");
        rows.first().map(|r| {
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
            )
        })
    }

    /// A contact's field value and provenance.
    pub async fn contact_field(&self, key: &str, field: &str) -> (Option<String>, Option<String>) {
        let rows = db::query(
            &self.conn,
            &format!("SELECT {field}, {field}_provenance FROM contacts WHERE source_key = $1"),
            vec![key.into()],
        )
        .await
        .expect("query");
        let row = rows.first().expect("contact exists");
        (
            row.try_get_by_index(0).unwrap(),
            row.try_get_by_index(1).unwrap(),
        )
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.pg_drop.take() {
            pg::drop_database_blocking(&admin_url, &name);
        }
    }
}

/// Import options.
#[derive(Debug, Default, Clone, Copy)]
pub struct Options {
    pub dry_run: bool,
    pub force: bool,
}

pub const APPLY: Options = Options {
    dry_run: false,
    force: false,
};
pub const FORCE: Options = Options {
    dry_run: false,
    force: true,
};
pub const DRY_RUN: Options = Options {
    dry_run: true,
    force: false,
};

/// The privacy key of the tests (`privacy.hash_key`), so that no test writes a key file.
pub const PRIVACY_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The compiled-in configuration defaults (the environment is ignored), with the tests'
/// privacy key, development tokens on (the tests sign HS256 tokens) and outbound requests
/// to loopback allowed (the tests' OneRoster provider and SMS gateway listen there).
pub fn config() -> Config {
    let mut config = Config::defaults().expect("defaults parse");
    config.privacy.hash_key = PRIVACY_KEY.into();
    config.auth.development = true;
    config.outbound.allow_private = true;
    config
}

/// A copy of a fixture folder in a temp dir.
pub struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// Copies `tests/fixtures/<name>`.
    pub fn copy(name: &str) -> Self {
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let dir = tempfile::tempdir().expect("temp dir");
        for entry in std::fs::read_dir(&source).expect("fixture exists") {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        Self { dir }
    }

    pub fn v21() -> Self {
        Self::copy("sds-v21/basic")
    }

    pub fn v1() -> Self {
        Self::copy("sds-v1/basic")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces a file's content.
    pub fn write(&self, file: &str, content: impl AsRef<[u8]>) -> &Self {
        std::fs::write(self.dir.path().join(file), content).unwrap();
        self
    }

    /// Appends a line to a file.
    pub fn append(&self, file: &str, line: &str) -> &Self {
        let mut content = std::fs::read_to_string(self.dir.path().join(file)).unwrap();
        content.push_str(line);
        content.push('\n');
        self.write(file, content)
    }

    /// Removes the lines of a file that contain `needle`.
    pub fn remove_lines(&self, file: &str, needle: &str) -> &Self {
        let content = std::fs::read_to_string(self.dir.path().join(file)).unwrap();
        let kept: Vec<&str> = content.lines().filter(|l| !l.contains(needle)).collect();
        self.write(file, kept.join("\n") + "\n")
    }

    /// Replaces text in a file.
    pub fn replace(&self, file: &str, from: &str, to: &str) -> &Self {
        let content = std::fs::read_to_string(self.dir.path().join(file)).unwrap();
        assert!(content.contains(from), "{file} does not contain {from:?}");
        self.write(file, content.replace(from, to))
    }

    /// Deletes a file.
    pub fn delete(&self, file: &str) -> &Self {
        std::fs::remove_file(self.dir.path().join(file)).unwrap();
        self
    }
}

/// Finds the one error with `code`, panicking with the whole list otherwise.
pub fn error<'a>(report: &'a ImportReport, code: &str) -> &'a Issue {
    report
        .errors
        .iter()
        .find(|e| e.code == code)
        .unwrap_or_else(|| panic!("no error {code}; errors: {:#?}", report.errors))
}
