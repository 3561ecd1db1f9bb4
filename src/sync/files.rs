//! Finding the files of a set in a folder, and the per-run parsing context shared by the
//! format readers.

use super::csv_file::{FileSpec, IssueSink, Limits, Row, SourceFile, read_csv};
use super::report::Issue;
use super::staging::{StageTable, Stager};
use crate::domain::{EmailAddress, LanguageTag, PhoneE164, Region};
use std::path::Path;

/// How a file name is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameMatch {
    /// SDS v1: any case.
    CaseInsensitive,
    /// SDS v2.1: exactly.
    Exact,
}

/// The files found for a set, in the order the format expects them.
#[derive(Debug, Default)]
pub struct FileSet {
    /// `(canonical name, file)`; the position is the `src` stored in staging rows.
    pub files: Vec<(&'static str, SourceFile)>,
    /// Total size in bytes (for the progress bar).
    pub total_bytes: u64,
}

impl FileSet {
    /// Looks in `dir` for each of `known` names. Unknown files are reported as warnings;
    /// a v2.1 file whose name differs only in case is an error (names are exact there).
    pub fn scan(
        dir: &Path,
        known: &[&'static str],
        matching: NameMatch,
        sink: &mut IssueSink,
    ) -> Result<Self, Issue> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Issue::file(
                &dir.display().to_string(),
                "unreadable_folder",
                format!("cannot read the folder: {e}"),
            )
        })?;
        let mut present: Vec<(String, std::path::PathBuf)> = Vec::new();
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                present.push((
                    entry.file_name().to_string_lossy().to_string(),
                    entry.path(),
                ));
            }
        }
        present.sort();
        let mut set = FileSet::default();
        for wanted in known {
            let found = present.iter().find(|(name, _)| match matching {
                NameMatch::Exact => name == wanted,
                NameMatch::CaseInsensitive => name.eq_ignore_ascii_case(wanted),
            });
            if let Some((name, path)) = found {
                set.total_bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                set.files.push((
                    wanted,
                    SourceFile {
                        name: name.clone(),
                        path: path.clone(),
                    },
                ));
            } else if matching == NameMatch::Exact
                && let Some((name, _)) = present
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            {
                sink.error(Issue::file(
                    name,
                    "wrong_file_name",
                    format!("file names are exact in this format: rename '{name}' to '{wanted}'"),
                ));
            }
        }
        for (name, _) in &present {
            if !known.iter().any(|k| k.eq_ignore_ascii_case(name)) {
                sink.warning(Issue::file(
                    name,
                    "unknown_file",
                    "not a file of this format; it was ignored",
                ));
            }
        }
        Ok(set)
    }

    /// The file for a canonical name, with its `src` index.
    pub fn get(&self, canonical: &str) -> Option<(usize, &SourceFile)> {
        self.files
            .iter()
            .position(|(c, _)| *c == canonical)
            .map(|i| (i, &self.files[i].1))
    }

    /// True when the file is present.
    pub fn has(&self, canonical: &str) -> bool {
        self.get(canonical).is_some()
    }

    /// Reports each of `names` that is missing; `format` names the file set in the message.
    pub fn require(&self, names: &[&str], format: &str, sink: &mut IssueSink) {
        for name in names.iter().filter(|name| !self.has(name)) {
            sink.error(Issue::file(
                name,
                "missing_file",
                format!("{name} is required in {format}"),
            ));
        }
    }

    /// Reports a file of a pair that is missing while the other is present.
    pub fn require_together(&self, first: &str, second: &str, sink: &mut IssueSink) {
        if self.has(first) != self.has(second) {
            let (present, missing) = if self.has(first) {
                (first, second)
            } else {
                (second, first)
            };
            sink.error(Issue::file(
                missing,
                "missing_file",
                format!("{present} is present, so {missing} is required too"),
            ));
        }
    }

    /// Display name of file `src`.
    pub fn name(&self, src: usize) -> &str {
        self.files
            .get(src)
            .map(|(_, f)| f.name.as_str())
            .unwrap_or("(unknown file)")
    }
}

/// Everything a format reader needs while parsing.
pub struct ParseCtx<'a> {
    /// The files of the set.
    pub files: &'a FileSet,
    /// Size limits.
    pub limits: Limits,
    /// Tenant's default phone region.
    pub region: Region,
    /// Errors and warnings.
    pub sink: IssueSink,
    /// Where parsed rows go.
    pub stager: Stager,
    /// Bytes-read callback for the progress bar.
    pub progress: &'a mut (dyn FnMut(u64) + Send),
    /// Rejected rows per staging table.
    pub rejected: Vec<(StageTable, u64)>,
}

impl ParseCtx<'_> {
    /// Reads the canonical file `canonical` (if present) with `spec`, giving each row to
    /// `on_row` with the file's `src` index; rejected rows are counted against `table`.
    pub fn read(
        &mut self,
        canonical: &'static str,
        spec: FileSpec,
        table: StageTable,
        mut on_row: impl FnMut(usize, &Row<'_>, &mut IssueSink, &mut Stager) -> bool,
    ) {
        if self.sink.full() || !self.stager.is_open() {
            return;
        }
        let Some((src, file)) = self.files.get(canonical) else {
            return;
        };
        let file = file.clone();
        let stager = &mut self.stager;
        let stats = read_csv(
            &file,
            &spec,
            &self.limits,
            &mut self.sink,
            self.progress,
            |row, sink| on_row(src, row, sink, stager),
        );
        if stats.rejected > 0 {
            self.rejected.push((table, stats.rejected));
        }
    }
}

/// A row handler that requires `must` and stages the values of `columns` as they are.
pub fn copy_columns(
    table: StageTable,
    must: &'static [&'static str],
    columns: &'static [&'static str],
) -> impl FnMut(usize, &Row<'_>, &mut IssueSink, &mut Stager) -> bool {
    move |src, row, sink, stage| {
        if !row.require(must, sink) {
            return false;
        }
        stage.push(
            table,
            src,
            row.record,
            columns.iter().map(|c| row.opt(c)).collect(),
        );
        true
    }
}

/// A contact's email and mobile phone after validation, with the warnings to report if the
/// person turns out to be a contact.
#[derive(Debug, Default)]
pub struct Channels {
    /// Valid email, or none.
    pub email: Option<String>,
    /// Why the email was dropped.
    pub email_warning: Option<String>,
    /// E.164 mobile, or none.
    pub phone: Option<String>,
    /// The column the phone came from.
    pub phone_column: Option<String>,
    /// Why the phone was dropped.
    pub phone_warning: Option<String>,
}

impl Channels {
    /// The staged contact row (columns of `StageTable::Contacts`) of a person keyed by
    /// `source_key`, whose email was read from `email_column`.
    pub fn into_contact_row(
        self,
        source_key: String,
        source_id: Option<String>,
        (given_name, family_name): (Option<String>, Option<String>),
        language: Option<LanguageTag>,
        email_column: &str,
    ) -> Vec<Option<String>> {
        vec![
            Some(source_key),
            source_id,
            given_name,
            family_name,
            self.email,
            self.phone,
            language.map(|l| l.as_str().to_string()),
            Some(email_column.to_string()),
            self.email_warning,
            self.phone_column,
            self.phone_warning,
        ]
    }

    /// Validates the email in `email_column` and the first non-blank of `phone_columns`.
    pub fn read(row: &Row<'_>, email_column: &str, phone_columns: &[&str], region: Region) -> Self {
        let mut channels = Channels::default();
        let email = row.get(email_column);
        if !email.is_empty() {
            match EmailAddress::parse(email) {
                Ok(valid) => channels.email = Some(valid.as_str().to_string()),
                Err(e) => {
                    channels.email_warning =
                        Some(format!("{e}; the contact is kept without an email"))
                }
            }
        }
        if let Some(column) = phone_columns.iter().find(|c| !row.get(c).is_empty()) {
            channels.phone_column = Some(column.to_string());
            match PhoneE164::parse(row.get(column), region) {
                Ok(valid) => channels.phone = Some(valid.as_str().to_string()),
                Err(e) => {
                    channels.phone_warning = Some(format!(
                        "{e}; it is kept out of SMS and the contact still syncs by email"
                    ))
                }
            }
        }
        channels
    }
}

/// The optional `column` naming the language a contact reads (a BCP 47 tag, an ISO 639-2
/// code or an English name, see [`LanguageTag::from_sis`]): blank is none; a value no
/// language matches is reported as a warning and the contact is kept without a language.
pub fn read_language(row: &Row<'_>, column: &str, sink: &mut IssueSink) -> Option<LanguageTag> {
    let raw = row.get(column);
    if raw.is_empty() {
        return None;
    }
    LanguageTag::from_sis(raw)
        .map_err(|e| {
            sink.warning(row.issue(
                column,
                "invalid_language",
                format!("{e}; the contact is kept without a language"),
            ))
        })
        .ok()
}
