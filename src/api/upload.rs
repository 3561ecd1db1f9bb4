//! Receiving an import upload: multipart CSV files, or one zip holding them. Everything is
//! held to limits while it streams to a private temporary folder: the number of files, each
//! file's size (`import.max_file_bytes`), the body (`api.max_upload_bytes`), and for a zip
//! the unpacked total and each entry's compression ratio (zip bombs), with entry names
//! reduced to plain file names (no path escapes the folder).

use super::error::ApiError;
use axum::extract::Multipart;
use axum::extract::multipart::MultipartError;
use axum::http::StatusCode;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Limits of one upload.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    /// Most files (parts, or zip entries).
    pub max_files: usize,
    /// Largest file, bytes.
    pub max_file_bytes: u64,
    /// Largest total of a zip's unpacked files, bytes.
    pub max_unzipped_bytes: u64,
    /// Largest unpacked/packed ratio of a zip entry.
    pub max_zip_ratio: u64,
}

impl UploadLimits {
    /// The limits `config` sets (`api.max_upload_files`, `import.max_file_bytes`,
    /// `api.max_unzipped_bytes`, `api.max_zip_ratio`).
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            max_files: config.api.max_upload_files,
            max_file_bytes: config.import.max_file_bytes,
            max_unzipped_bytes: config.api.max_unzipped_bytes,
            max_zip_ratio: config.api.max_zip_ratio,
        }
    }
}

/// One received file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReceivedFile {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// A received upload: the files in a temporary folder (removed when this is dropped) and
/// the text fields.
pub struct Upload {
    /// Holds the temporary folder.
    pub temp: tempfile::TempDir,
    /// The folder holding the file set.
    pub files_dir: PathBuf,
    /// The files of the set.
    pub files: Vec<ReceivedFile>,
    /// True when the files came in a zip.
    pub zipped: bool,
    /// `format` field.
    pub format: Option<String>,
    /// `dryRun` field.
    pub dry_run: Option<String>,
    /// `force` field.
    pub force: Option<String>,
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the upload is larger than api.max_upload_bytes",
        )
    } else {
        ApiError::bad_request(
            "malformed_body",
            format!("malformed multipart body: {}", e.body_text()),
        )
    }
}

fn too_large(what: String) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", what)
}

fn io_error(e: std::io::Error) -> ApiError {
    ApiError::internal(format!("upload storage: {e}"))
}

/// Reduces an uploaded name to a plain file name: the last path component, which must be
/// non-empty, not `.`/`..`, not hidden, without control characters, at most 255 bytes.
pub fn plain_name(raw: &str) -> Option<String> {
    let name = raw.rsplit(['/', '\\']).next()?.trim();
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.chars().any(char::is_control)
        && !name.contains(':');
    ok.then(|| name.to_string())
}

fn is_zip(name: &str, content_type: Option<&str>, head: &[u8]) -> bool {
    name.to_ascii_lowercase().ends_with(".zip")
        || matches!(
            content_type,
            Some("application/zip" | "application/x-zip-compressed")
        )
        || head.starts_with(b"PK\x03\x04")
}

/// Streams `multipart` to a temporary folder.
pub async fn receive(mut multipart: Multipart, limits: UploadLimits) -> Result<Upload, ApiError> {
    let temp = tempfile::Builder::new()
        .prefix("pc-upload-")
        .tempdir()
        .map_err(io_error)?;
    let files_dir = temp.path().join("files");
    tokio::fs::create_dir(&files_dir).await.map_err(io_error)?;
    let mut upload = Upload {
        files_dir,
        temp,
        files: Vec::new(),
        zipped: false,
        format: None,
        dry_run: None,
        force: None,
    };
    let mut seen = HashSet::new();
    let mut zip: Option<PathBuf> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let field_name = field.name().unwrap_or_default().to_string();
        let Some(raw_name) = field.file_name().map(str::to_string) else {
            let value = field.text().await.map_err(multipart_error)?;
            if value.len() > 100 {
                return Err(ApiError::bad_request(
                    "invalid_field",
                    format!("field '{field_name}' is too long"),
                ));
            }
            let slot = match field_name.as_str() {
                "format" => &mut upload.format,
                "dryRun" => &mut upload.dry_run,
                "force" => &mut upload.force,
                other => {
                    return Err(ApiError::bad_request(
                        "invalid_field",
                        format!("unknown field '{other}': send format, dryRun, force and files"),
                    ));
                }
            };
            *slot = Some(value.trim().to_string());
            continue;
        };
        let name = plain_name(&raw_name).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_file_name",
                format!("'{raw_name}' is not a usable file name"),
            )
        })?;
        if upload.files.len() + usize::from(zip.is_some()) >= limits.max_files {
            return Err(ApiError::bad_request(
                "too_many_files",
                format!("an upload holds at most {} files", limits.max_files),
            ));
        }
        if !seen.insert(name.to_lowercase()) {
            return Err(ApiError::bad_request(
                "duplicate_file",
                format!("the file '{name}' was sent twice"),
            ));
        }
        let content_type = field.content_type().map(str::to_string);
        let first = field.chunk().await.map_err(multipart_error)?;
        let zipped = is_zip(
            &name,
            content_type.as_deref(),
            first.as_deref().unwrap_or_default(),
        );
        if zipped && (zip.is_some() || !upload.files.is_empty()) {
            return Err(ApiError::bad_request(
                "invalid_upload",
                "send either one zip or CSV files, not both",
            ));
        }
        if !zipped && zip.is_some() {
            return Err(ApiError::bad_request(
                "invalid_upload",
                "send either one zip or CSV files, not both",
            ));
        }
        let path = if zipped {
            upload.temp.path().join("upload.zip")
        } else {
            upload.files_dir.join(&name)
        };
        // The zip itself is limited by the body limit; a CSV by the file limit.
        let cap = if zipped {
            u64::MAX
        } else {
            limits.max_file_bytes
        };
        let mut file = tokio::fs::File::create(&path).await.map_err(io_error)?;
        let mut bytes = 0u64;
        let mut chunk = first;
        while let Some(data) = chunk {
            bytes += data.len() as u64;
            if bytes > cap {
                return Err(too_large(format!(
                    "{name} is larger than import.max_file_bytes ({cap} bytes)"
                )));
            }
            file.write_all(&data).await.map_err(io_error)?;
            chunk = field.chunk().await.map_err(multipart_error)?;
        }
        file.flush().await.map_err(io_error)?;
        if zipped {
            zip = Some(path);
        } else {
            upload.files.push(ReceivedFile { name, bytes });
        }
    }
    if let Some(zip) = zip {
        let dir = upload.files_dir.clone();
        upload.files = tokio::task::spawn_blocking(move || unzip(&zip, &dir, limits))
            .await
            .map_err(|e| ApiError::internal(format!("unzip task: {e}")))??;
        upload.zipped = true;
    }
    if upload.files.is_empty() {
        return Err(ApiError::bad_request(
            "no_files",
            "the upload holds no file: send the CSV files (or one zip) as multipart file parts",
        ));
    }
    Ok(upload)
}

fn bad_zip(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_zip", message)
}

/// Unpacks `zip` into `dir` under the limits; folders inside the zip are flattened.
pub fn unzip(zip: &Path, dir: &Path, limits: UploadLimits) -> Result<Vec<ReceivedFile>, ApiError> {
    let file = std::fs::File::open(zip).map_err(io_error)?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| bad_zip(format!("not a readable zip: {e}")))?;
    // Folders and skipped entries count too, so a zip of a million empty entries is refused.
    if archive.len() > limits.max_files.saturating_mul(4).max(16) {
        return Err(ApiError::bad_request(
            "too_many_files",
            format!("the zip holds {} entries", archive.len()),
        ));
    }
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    let mut total = 0u64;
    for index in 0..archive.len() {
        let entry = archive
            .by_index(index)
            .map_err(|e| bad_zip(format!("entry {index} cannot be read: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let raw = entry
            .name()
            .map_err(|e| bad_zip(format!("entry {index} has an unreadable name: {e}")))?
            .to_string();
        if raw.starts_with("__MACOSX/") || raw.ends_with(".DS_Store") {
            continue;
        }
        if entry.enclosed_name().is_none() {
            return Err(bad_zip(format!(
                "the entry '{raw}' points outside the folder"
            )));
        }
        let name = plain_name(&raw)
            .ok_or_else(|| bad_zip(format!("the entry '{raw}' is not a usable file name")))?;
        if !seen.insert(name.to_lowercase()) {
            return Err(bad_zip(format!("two entries are named '{name}'")));
        }
        if files.len() >= limits.max_files {
            return Err(ApiError::bad_request(
                "too_many_files",
                format!("an upload holds at most {} files", limits.max_files),
            ));
        }
        let packed = entry.compressed_size().max(1);
        let ratio_cap = packed.saturating_mul(limits.max_zip_ratio).max(1 << 20);
        let cap = limits
            .max_file_bytes
            .min(ratio_cap)
            .min(limits.max_unzipped_bytes.saturating_sub(total));
        if entry.size() > cap {
            return Err(zip_limit(&name, entry.size(), packed, limits));
        }
        let mut out = std::fs::File::create(dir.join(&name)).map_err(io_error)?;
        // Never trust the declared size: read at most one byte past the cap.
        let mut limited = entry.take(cap.saturating_add(1));
        let written = std::io::copy(&mut limited, &mut out)
            .map_err(|e| bad_zip(format!("the entry '{name}' cannot be unpacked: {e}")))?;
        if written > cap {
            return Err(zip_limit(&name, written, packed, limits));
        }
        out.flush().map_err(io_error)?;
        total += written;
        files.push(ReceivedFile {
            name,
            bytes: written,
        });
    }
    Ok(files)
}

fn zip_limit(name: &str, size: u64, packed: u64, limits: UploadLimits) -> ApiError {
    if size > limits.max_file_bytes {
        too_large(format!(
            "the entry '{name}' unpacks to more than import.max_file_bytes ({} bytes)",
            limits.max_file_bytes
        ))
    } else if size > packed.saturating_mul(limits.max_zip_ratio) {
        too_large(format!(
            "the entry '{name}' unpacks more than {} times its packed size (zip bomb guard)",
            limits.max_zip_ratio
        ))
    } else {
        too_large(format!(
            "the zip unpacks to more than api.max_unzipped_bytes ({} bytes)",
            limits.max_unzipped_bytes
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names() {
        assert_eq!(plain_name("users.csv").as_deref(), Some("users.csv"));
        assert_eq!(plain_name("a/b/users.csv").as_deref(), Some("users.csv"));
        assert_eq!(
            plain_name("..\\..\\users.csv").as_deref(),
            Some("users.csv")
        );
        assert_eq!(plain_name(".."), None);
        assert_eq!(plain_name("a/"), None);
        assert_eq!(plain_name(".hidden"), None);
        assert_eq!(plain_name("C:evil"), None);
        assert_eq!(plain_name("x\u{0}y"), None);
    }
}
