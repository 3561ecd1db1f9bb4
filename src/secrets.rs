//! Keys the service makes for itself. On the embedded SQLite default there is a **data
//! folder** (the folder of the database file); a key named N lives there as `N.key`
//! (64 hex characters, file mode 0600), generated from the system's randomness the first
//! time it is needed, announced in one log line, and read back on every later run. Back it
//! up with the database: data encrypted under it cannot be read without it.
//!
//! On PostgreSQL there is no data folder (several instances on several machines share the
//! database), so such keys must be configured explicitly.

use crate::config::DatabaseConfig;
use ring::rand::{SecureRandom, SystemRandom};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bytes of a generated key.
pub const KEY_BYTES: usize = 32;

/// Why a key file could not be read or made.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SecretsError(String);

/// The folder where the service keeps what it makes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFolder(PathBuf);

impl DataFolder {
    /// The folder of the SQLite database file; `None` on PostgreSQL or an in-memory SQLite
    /// database.
    pub fn of(database: &DatabaseConfig) -> Option<Self> {
        let file = crate::db::sqlite_file(&database.url)?;
        let folder = match file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Some(Self(folder))
    }

    /// A folder given directly.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Where the key named `name` lives.
    pub fn key_path(&self, name: &str) -> PathBuf {
        self.0.join(format!("{name}.key"))
    }

    /// The key named `name` when its file exists (never generated: for reading data the key
    /// already protects).
    pub fn existing_key(&self, name: &str) -> Result<Option<[u8; KEY_BYTES]>, SecretsError> {
        read_key(&self.key_path(name))
    }

    /// The key named `name`: read from `N.key`, or generated into it when the file does not
    /// exist yet (`purpose` says in the log line what the key protects). Two processes that
    /// start at once end up with the same key: the file appears whole or not at all.
    pub fn key(&self, name: &str, purpose: &str) -> Result<[u8; KEY_BYTES], SecretsError> {
        let path = self.key_path(name);
        match read_key(&path) {
            Ok(Some(key)) => return Ok(key),
            Ok(None) => {}
            Err(e) => return Err(e),
        }
        // A fresh machine whose database lives elsewhere has no data folder yet.
        std::fs::create_dir_all(&self.0).map_err(|e| {
            SecretsError(format!(
                "cannot create the data folder {}: {e}",
                self.0.display()
            ))
        })?;
        let mut key = [0u8; KEY_BYTES];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| SecretsError("no system randomness to generate a key".into()))?;
        let temporary = self.0.join(format!(
            ".{name}.key.{}.{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let written = write_private(&temporary, &format!("{}\n", to_hex(&key)));
        // A hard link fails when the name exists, so of two processes only one creates it.
        let linked = written.and_then(|()| std::fs::hard_link(&temporary, &path));
        let _ = std::fs::remove_file(&temporary);
        match linked {
            Ok(()) => {
                tracing::warn!(
                    file = %path.display(),
                    "generated a new key for {purpose} in {}; back this file up with the database (without it the data it protects cannot be read)",
                    path.display()
                );
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                read_key(&path)?.ok_or_else(|| {
                    SecretsError(format!("{} vanished while it was read", path.display()))
                })
            }
            Err(e) => Err(SecretsError(format!(
                "cannot create the key file {}: {e}",
                path.display()
            ))),
        }
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// The key in `path`; `None` when the file does not exist.
fn read_key(path: &Path) -> Result<Option<[u8; KEY_BYTES]>, SecretsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(SecretsError(format!(
                "cannot read the key file {}: {e}",
                path.display()
            )));
        }
    };
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                "the key file {} can be read by other users; run chmod 600 on it",
                path.display()
            );
        }
    }
    from_hex(text.trim())
        .and_then(|bytes| <[u8; KEY_BYTES]>::try_from(bytes).ok())
        .map(Some)
        .ok_or_else(|| {
            SecretsError(format!(
                "the key file {} does not hold 64 hex characters; restore it from a backup",
                path.display()
            ))
        })
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of a hex text; `None` when it is not hex.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(url: &str) -> DatabaseConfig {
        let mut config = crate::config::Config::defaults().unwrap().database;
        config.url = url.into();
        config
    }

    #[test]
    fn the_data_folder_is_the_sqlite_file_s_folder() {
        assert_eq!(
            DataFolder::of(&database("sqlite://data/parent-connection.db?mode=rwc")),
            Some(DataFolder::at("data"))
        );
        assert_eq!(
            DataFolder::of(&database("sqlite:///var/lib/pc/pc.db")),
            Some(DataFolder::at("/var/lib/pc"))
        );
        assert_eq!(
            DataFolder::of(&database("sqlite://pc.db")),
            Some(DataFolder::at("."))
        );
        assert_eq!(DataFolder::of(&database("sqlite::memory:")), None);
        assert_eq!(DataFolder::of(&database("postgres://u:p@h/db")), None);
    }

    #[test]
    fn a_missing_data_folder_is_created_for_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let folder = DataFolder::at(dir.path().join("data").join("nested"));
        let key = folder.key("test", "tests").unwrap();
        assert_eq!(folder.key("test", "tests").unwrap(), key);
        assert!(folder.key_path("test").is_file());
    }

    #[test]
    fn a_key_is_generated_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let folder = DataFolder::at(dir.path());
        let first = folder.key("test", "tests").unwrap();
        let path = folder.key_path("test");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(folder.key("test", "tests").unwrap(), first);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            to_hex(&first)
        );
        assert_ne!(folder.key("other", "tests").unwrap(), first);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        std::fs::write(&path, "not a key").unwrap();
        let error = folder.key("test", "tests").unwrap_err().to_string();
        assert!(
            error.contains("64 hex") && error.contains("test.key"),
            "{error}"
        );
    }

    #[test]
    fn processes_starting_at_once_share_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<_> = (0..8)
            .map(|_| {
                let folder = DataFolder::at(dir.path());
                std::thread::spawn(move || folder.key("race", "tests").unwrap())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert!(keys.windows(2).all(|w| w[0] == w[1]));
    }
}
