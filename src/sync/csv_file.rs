//! Guarded CSV reading. The `csv` crate accepts things SPEC §3.2 refuses (an unterminated
//! quote silently swallows the rest of the file, a 64 MiB field is accepted, duplicate
//! headers keep the last value), so every guard lives here, and every problem becomes an
//! [`Issue`] naming the file, the record and the column. Nothing in here panics on input.

use super::report::Issue;
use csv::{ByteRecord, ReaderBuilder, StringRecord};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Size limits applied while reading (from `[import]` in the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest file, bytes.
    pub max_file_bytes: u64,
    /// Largest record, bytes.
    pub max_record_bytes: usize,
    /// Largest field, bytes.
    pub max_field_bytes: usize,
}

/// The columns a file must and may have.
#[derive(Debug, Clone, Copy)]
pub struct FileSpec {
    /// Headers that must be present (values may still be blank unless the format says not).
    pub required: &'static [&'static str],
    /// Headers that are read when present.
    pub optional: &'static [&'static str],
    /// SDS v1 matches headers regardless of case; SDS v2.1 headers are case-sensitive.
    pub case_insensitive: bool,
}

/// A file of the set, as found in the folder.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Name as found on disk (used in every report line).
    pub name: String,
    /// Full path.
    pub path: PathBuf,
}

/// Collects errors and warnings, and tells when the error cap stops the run.
#[derive(Debug, Default, Clone)]
pub struct IssueSink {
    /// Errors so far.
    pub errors: Vec<Issue>,
    /// Warnings kept (at most `warning_cap`).
    pub warnings: Vec<Issue>,
    /// Warnings seen, kept or not.
    pub warning_count: u64,
    /// Errors after which reading stops.
    pub error_cap: usize,
    /// Warnings kept in the report.
    pub warning_cap: usize,
}

impl IssueSink {
    /// A sink with the given caps.
    pub fn new(error_cap: usize, warning_cap: usize) -> Self {
        Self {
            error_cap: error_cap.max(1),
            warning_cap,
            ..Self::default()
        }
    }

    /// Records an error.
    pub fn error(&mut self, issue: Issue) {
        if self.errors.len() < self.error_cap {
            self.errors.push(issue);
        }
    }

    /// Records a warning.
    pub fn warning(&mut self, issue: Issue) {
        self.warning_count += 1;
        if self.warnings.len() < self.warning_cap {
            self.warnings.push(issue);
        }
    }

    /// True once the error cap is reached: reading stops.
    pub fn full(&self) -> bool {
        self.errors.len() >= self.error_cap
    }
}

/// One data row whose every field is valid UTF-8 within the size limits.
pub struct Row<'a> {
    /// Record number, header = 1.
    pub record: u64,
    file: &'a str,
    columns: &'a [(&'static str, Option<usize>)],
    fields: &'a StringRecord,
}

impl Row<'_> {
    /// The trimmed value of column `name` (one of the spec's columns), `""` when the column
    /// is absent or blank.
    pub fn get(&self, name: &str) -> &str {
        self.columns
            .iter()
            .find(|(column, _)| *column == name)
            .and_then(|(_, index)| index.and_then(|i| self.fields.get(i)))
            .map(str::trim)
            .unwrap_or("")
    }

    /// `Some(value)` when the column holds a non-blank value.
    pub fn opt(&self, name: &str) -> Option<String> {
        let value = self.get(name);
        (!value.is_empty()).then(|| value.to_string())
    }

    /// Reports each of `columns` that is blank; true when all hold a value.
    pub fn require(&self, columns: &[&str], sink: &mut IssueSink) -> bool {
        let mut ok = true;
        for column in columns.iter().filter(|c| self.get(c).is_empty()) {
            sink.error(self.issue(
                column,
                "missing_value",
                format!("'{column}' is required and is blank"),
            ));
            ok = false;
        }
        ok
    }

    /// An issue located at this row and column.
    pub fn issue(&self, column: &str, code: &'static str, message: impl Into<String>) -> Issue {
        Issue::at(self.file, self.record, Some(column), code, message)
    }
}

/// What reading one file produced.
#[derive(Debug, Default, Clone, Copy)]
pub struct FileStats {
    /// Data rows read.
    pub rows: u64,
    /// Data rows refused (by the reader or by the row callback).
    pub rejected: u64,
}

/// Reads `file` against `spec`, calling `on_row` for each well-formed data row. `on_row`
/// returns `false` when it refused the row (having reported why). `progress` receives the
/// number of bytes read since its previous call.
pub fn read_csv(
    file: &SourceFile,
    spec: &FileSpec,
    limits: &Limits,
    sink: &mut IssueSink,
    progress: &mut dyn FnMut(u64),
    mut on_row: impl FnMut(&Row<'_>, &mut IssueSink) -> bool,
) -> FileStats {
    let mut stats = FileStats::default();
    let name = file.name.as_str();
    let (handle, bom_len) = match open_checked(file, limits) {
        Ok(opened) => opened,
        Err(issue) => {
            sink.error(issue);
            return stats;
        }
    };
    let guarded = GuardedReader {
        inner: BufReader::with_capacity(1 << 16, handle),
        since_newline: 0,
        limit: limits.max_record_bytes,
        unreported: 0,
    };
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(guarded);

    let mut record = ByteRecord::new();
    let header = match reader.read_byte_record(&mut record) {
        Ok(true) => record.clone(),
        Ok(false) => {
            sink.error(Issue::file(
                name,
                "empty_file",
                "the file is empty: it needs at least the header row",
            ));
            return stats;
        }
        Err(e) => {
            sink.error(csv_error_issue(name, 1, &e, limits));
            return stats;
        }
    };
    let Some(columns) = resolve_header(name, &header, spec, sink) else {
        return stats;
    };
    let header_names: Vec<String> = header
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_string())
        .collect();

    let mut last_start = 0u64;
    let mut last_record = 1u64;
    let mut last_had_line_break = false;
    loop {
        progress(reader.get_mut().take_progress());
        if sink.full() {
            break;
        }
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let at = e
                    .position()
                    .map(|p| p.record() + 1)
                    .unwrap_or(last_record + 1);
                sink.error(csv_error_issue(name, at, &e, limits));
                stats.rejected += 1;
                break;
            }
        }
        let position = record.position().cloned();
        let number = position
            .as_ref()
            .map(|p| p.record() + 1)
            .unwrap_or(last_record + 1);
        last_record = number;
        last_start = position.map(|p| p.byte()).unwrap_or(last_start);
        stats.rows += 1;
        match check_record(name, number, &record, &header_names, limits) {
            Err((issue, line_break)) => {
                last_had_line_break = line_break;
                sink.error(issue);
                stats.rejected += 1;
            }
            Ok(()) => {
                last_had_line_break = false;
                let Ok(fields) = StringRecord::from_byte_record(record.clone()) else {
                    stats.rejected += 1;
                    continue;
                };
                let row = Row {
                    record: number,
                    file: name,
                    columns: &columns,
                    fields: &fields,
                };
                if !on_row(&row, sink) {
                    stats.rejected += 1;
                }
            }
        }
    }
    progress(reader.get_mut().take_progress());
    if last_had_line_break && quote_unbalanced_from(&file.path, bom_len + last_start) {
        sink.error(Issue::at(
            name,
            last_record,
            None,
            "unterminated_quote",
            "a quoted field is never closed: it runs to the end of the file; close the quote",
        ));
    }
    stats
}

/// Opens the file, checks its size, refuses UTF-16 and skips a UTF-8 byte-order mark.
fn open_checked(file: &SourceFile, limits: &Limits) -> Result<(File, u64), Issue> {
    let name = file.name.as_str();
    let io_issue = |e: io::Error| {
        Issue::file(
            name,
            "unreadable_file",
            format!("cannot read the file: {e}"),
        )
    };
    let mut handle = File::open(&file.path).map_err(io_issue)?;
    let size = handle.metadata().map_err(io_issue)?.len();
    if size > limits.max_file_bytes {
        return Err(Issue::file(
            name,
            "file_too_large",
            format!(
                "the file is {size} bytes; the limit is {} bytes (import.max_file_bytes)",
                limits.max_file_bytes
            ),
        ));
    }
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() {
        match handle.read(&mut head[got..]).map_err(io_issue)? {
            0 => break,
            n => got += n,
        }
    }
    let head = &head[..got];
    if head.starts_with(&[0xFF, 0xFE])
        || head.starts_with(&[0xFE, 0xFF])
        || (got >= 2 && head.contains(&0))
    {
        return Err(Issue::file(
            name,
            "not_utf8",
            "the file is UTF-16 (or holds NUL bytes); save it as UTF-8 (a UTF-8 byte-order mark is fine)",
        ));
    }
    let bom = if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        3
    } else {
        0
    };
    handle.seek(SeekFrom::Start(bom)).map_err(io_issue)?;
    Ok((handle, bom))
}

/// Checks the header row: UTF-8, no duplicates, every required column present. Returns the
/// position of each spec column.
fn resolve_header(
    name: &str,
    header: &ByteRecord,
    spec: &FileSpec,
    sink: &mut IssueSink,
) -> Option<Vec<(&'static str, Option<usize>)>> {
    let mut names = Vec::with_capacity(header.len());
    let mut ok = true;
    for (i, raw) in header.iter().enumerate() {
        match std::str::from_utf8(raw) {
            Ok(text) => names.push(text.trim().to_string()),
            Err(_) => {
                sink.error(Issue::at(
                    name,
                    1,
                    None,
                    "not_utf8",
                    format!("header field {} is not valid UTF-8", i + 1),
                ));
                return None;
            }
        }
    }
    let same = |a: &str, b: &str| {
        if spec.case_insensitive {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    for (i, column) in names.iter().enumerate() {
        if names[..i].iter().any(|earlier| same(earlier, column)) {
            sink.error(Issue::at(
                name,
                1,
                Some(column),
                "duplicate_header",
                format!("the header '{column}' appears more than once"),
            ));
            ok = false;
        }
    }
    let mut columns = Vec::new();
    for wanted in spec.required {
        let found = names.iter().position(|n| same(n, wanted));
        if found.is_none() {
            let hint = names
                .iter()
                .find(|n| n.eq_ignore_ascii_case(wanted))
                .map(|n| format!(" (found '{n}': headers are case-sensitive in this format)"))
                .unwrap_or_default();
            sink.error(Issue::at(
                name,
                1,
                Some(wanted),
                "missing_header",
                format!("the required header '{wanted}' is missing{hint}"),
            ));
            ok = false;
        }
        columns.push((*wanted, found));
    }
    for wanted in spec.optional {
        columns.push((*wanted, names.iter().position(|n| same(n, wanted))));
    }
    ok.then_some(columns)
}

/// Checks one record's shape and fields. The `bool` tells whether the problem was a line
/// break (the sign of an unterminated quote when it is the last record).
fn check_record(
    name: &str,
    number: u64,
    record: &ByteRecord,
    header: &[String],
    limits: &Limits,
) -> Result<(), (Issue, bool)> {
    // A line break is checked first: it is the sign of an unterminated quote, which also
    // makes the row look ragged.
    for (i, field) in record.iter().enumerate() {
        if field.contains(&b'\n') || field.contains(&b'\r') {
            let column = header.get(i).cloned();
            return Err((
                Issue { file: name.into(), record: Some(number), column, code: "line_break_in_field", message: "the value contains a line break, which this format does not accept (or a quote is not closed)".into() },
                true,
            ));
        }
    }
    if record.len() != header.len() {
        let column = header
            .get(record.len().min(header.len().saturating_sub(1)))
            .cloned();
        let message = if record.len() < header.len() {
            format!(
                "the row has {} fields but the header has {}: '{}' and later columns are missing",
                record.len(),
                header.len(),
                column.clone().unwrap_or_default()
            )
        } else {
            format!(
                "the row has {} fields but the header has {}",
                record.len(),
                header.len()
            )
        };
        let column = if record.len() < header.len() {
            column
        } else {
            Some(format!("(field {})", header.len() + 1))
        };
        return Err((
            Issue {
                file: name.into(),
                record: Some(number),
                column,
                code: "ragged_row",
                message,
            },
            false,
        ));
    }
    if record.as_slice().len() > limits.max_record_bytes {
        return Err((
            Issue::at(
                name,
                number,
                None,
                "record_too_large",
                format!(
                    "the record is longer than {} bytes (import.max_record_bytes)",
                    limits.max_record_bytes
                ),
            ),
            false,
        ));
    }
    for (field, column) in record.iter().zip(header) {
        if field.len() > limits.max_field_bytes {
            return Err((
                Issue::at(
                    name,
                    number,
                    Some(column),
                    "field_too_large",
                    format!(
                        "the value is {} bytes; the limit is {} (import.max_field_bytes)",
                        field.len(),
                        limits.max_field_bytes
                    ),
                ),
                false,
            ));
        }
        if field.contains(&0) {
            return Err((
                Issue::at(
                    name,
                    number,
                    Some(column),
                    "nul_character",
                    "the value holds a NUL character (U+0000), which cannot be stored; remove it",
                ),
                false,
            ));
        }
        if let Err(e) = std::str::from_utf8(field) {
            return Err((
                Issue::at(
                    name,
                    number,
                    Some(column),
                    "not_utf8",
                    format!(
                        "the value is not valid UTF-8 (bad byte at offset {})",
                        e.valid_up_to()
                    ),
                ),
                false,
            ));
        }
    }
    Ok(())
}

fn csv_error_issue(name: &str, record: u64, error: &csv::Error, limits: &Limits) -> Issue {
    match error.kind() {
        csv::ErrorKind::Io(e) if e.kind() == io::ErrorKind::InvalidData => Issue::at(
            name,
            record,
            None,
            "record_too_large",
            format!(
                "a line is longer than {} bytes (import.max_record_bytes); reading stopped",
                limits.max_record_bytes
            ),
        ),
        _ => Issue::at(
            name,
            record,
            None,
            "malformed_csv",
            format!("the file cannot be read as CSV here: {error}"),
        ),
    }
}

/// True when the bytes from `offset` to the end of the file hold an odd number of quotes,
/// i.e. the last record opened a quote it never closed.
fn quote_unbalanced_from(path: &Path, offset: u64) -> bool {
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return false;
    }
    let mut quotes = 0u64;
    let mut buffer = [0u8; 1 << 16];
    loop {
        match file.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => quotes += buffer[..n].iter().filter(|&&b| b == b'"').count() as u64,
        }
    }
    quotes % 2 == 1
}

/// Refuses any line longer than the record limit before the `csv` crate buffers it, so a
/// huge field cannot exhaust memory. Also counts bytes for the progress bar.
struct GuardedReader<R> {
    inner: R,
    since_newline: usize,
    limit: usize,
    unreported: u64,
}

impl<R> GuardedReader<R> {
    fn take_progress(&mut self) -> u64 {
        std::mem::take(&mut self.unreported)
    }
}

impl<R: Read> Read for GuardedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &byte in &buf[..n] {
            if byte == b'\n' {
                self.since_newline = 0;
            } else {
                self.since_newline += 1;
                if self.since_newline > self.limit {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
                }
            }
        }
        self.unreported += n as u64;
        Ok(n)
    }
}
