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

    // Two threads: this one judges rows (`on_row`), a second tokenises and checks the
    // records ahead of it, so a run whose database side idles (a re-sync) uses both cores.
    // Every issue is still recorded here, in record order.
    let mut last_start = 0u64;
    let mut last_record = 1u64;
    let mut last_had_line_break = false;
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Chunk>(CHUNKS_AHEAD);
        // Judged records go back to the tokeniser to be read into again: no allocation
        // and no cross-thread free per record.
        let (recycle, recycled) = std::sync::mpsc::sync_channel::<Vec<ByteRecord>>(CHUNKS_AHEAD);
        let header_names = &header_names;
        scope.spawn(move || tokenise(reader, sender, recycled, name, header_names, limits));
        'chunks: for chunk in receiver {
            progress(chunk.bytes);
            let mut spare = Vec::with_capacity(chunk.items.len());
            for item in chunk.items {
                if sink.full() {
                    break 'chunks;
                }
                match item {
                    Record::Failed(issue) => {
                        sink.error(issue);
                        stats.rejected += 1;
                        break 'chunks;
                    }
                    Record::Refused {
                        number,
                        start,
                        issue,
                        line_break,
                    } => {
                        (last_record, last_start) = (number, start);
                        stats.rows += 1;
                        last_had_line_break = line_break;
                        if let Some(issue) = issue {
                            sink.error(issue);
                        }
                        stats.rejected += 1;
                    }
                    Record::Row {
                        number,
                        start,
                        fields,
                    } => {
                        (last_record, last_start) = (number, start);
                        stats.rows += 1;
                        last_had_line_break = false;
                        let row = Row {
                            record: number,
                            file: name,
                            columns: &columns,
                            fields: &fields,
                        };
                        if !on_row(&row, sink) {
                            stats.rejected += 1;
                        }
                        spare.push(fields.into_byte_record());
                    }
                }
            }
            // Full (or the tokeniser is done): these are simply dropped.
            let _ = recycle.try_send(spare);
        }
    });
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

/// Records per [`Chunk`]: enough to make the hand-over cheap, few enough to stay small.
const CHUNK_ROWS: usize = 512;
/// Chunks the tokeniser may read ahead of the rows being judged.
const CHUNKS_AHEAD: usize = 8;

/// Records read ahead by [`tokenise`], with the bytes read for them (for the progress bar).
struct Chunk {
    bytes: u64,
    items: Vec<Record>,
}

/// One record as the tokeniser found it.
enum Record {
    /// Well-formed: every field valid UTF-8 within the limits.
    Row {
        number: u64,
        start: u64,
        fields: StringRecord,
    },
    /// Refused by [`check_record`] (the issue, and whether it was a line break).
    Refused {
        number: u64,
        start: u64,
        issue: Option<Issue>,
        line_break: bool,
    },
    /// The CSV cannot be read on from here: reading stops.
    Failed(Issue),
}

/// Reads and checks the data records of `reader`, sending them in chunks until the file
/// ends, reading fails, or the receiver stops listening.
fn tokenise<R: Read>(
    mut reader: csv::Reader<GuardedReader<R>>,
    sender: std::sync::mpsc::SyncSender<Chunk>,
    recycled: std::sync::mpsc::Receiver<Vec<ByteRecord>>,
    name: &str,
    header_names: &[String],
    limits: &Limits,
) {
    let mut last_start = 0u64;
    let mut last_record = 1u64;
    let mut items = Vec::with_capacity(CHUNK_ROWS);
    let mut spare: Vec<ByteRecord> = Vec::new();
    loop {
        if spare.is_empty()
            && let Ok(more) = recycled.try_recv()
        {
            spare = more;
        }
        // `read_byte_record` clears a reused record before reading into it.
        let mut record = spare
            .pop()
            .unwrap_or_else(|| ByteRecord::with_capacity(256, header_names.len()));
        let done = match reader.read_byte_record(&mut record) {
            Ok(false) => true,
            Ok(true) => {
                let position = record.position().cloned();
                let number = position
                    .as_ref()
                    .map(|p| p.record() + 1)
                    .unwrap_or(last_record + 1);
                last_record = number;
                last_start = position.map(|p| p.byte()).unwrap_or(last_start);
                let start = last_start;
                items.push(
                    match check_record(name, number, &record, header_names, limits) {
                        Err((issue, line_break)) => Record::Refused {
                            number,
                            start,
                            issue: Some(issue),
                            line_break,
                        },
                        Ok(()) => match StringRecord::from_byte_record(record) {
                            Ok(fields) => Record::Row {
                                number,
                                start,
                                fields,
                            },
                            Err(_) => Record::Refused {
                                number,
                                start,
                                issue: None,
                                line_break: false,
                            },
                        },
                    },
                );
                false
            }
            Err(e) => {
                let at = e
                    .position()
                    .map(|p| p.record() + 1)
                    .unwrap_or(last_record + 1);
                items.push(Record::Failed(csv_error_issue(name, at, &e, limits)));
                true
            }
        };
        if done || items.len() >= CHUNK_ROWS {
            let chunk = Chunk {
                bytes: reader.get_mut().take_progress(),
                items: std::mem::replace(&mut items, Vec::with_capacity(CHUNK_ROWS)),
            };
            if sender.send(chunk).is_err() || done {
                return;
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: FileSpec = FileSpec {
        required: &["id"],
        optional: &["name"],
        case_insensitive: false,
    };
    const LIMITS: Limits = Limits {
        max_file_bytes: 1 << 30,
        max_record_bytes: 1 << 16,
        max_field_bytes: 1 << 12,
    };

    /// Issues as (record, code), in the order reported.
    type Found = Vec<(Option<u64>, String)>;

    /// Reads `content` as a file; returns the ids seen by the row callback, the issues
    /// in the order reported, and the stats.
    fn read(content: &str, error_cap: usize) -> (Vec<String>, Found, FileStats) {
        let dir = std::env::temp_dir().join(format!(
            "csv-file-test-{}-{}",
            std::process::id(),
            xxhash_rust::xxh3::xxh3_64(content.as_bytes())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.csv");
        std::fs::write(&path, content).unwrap();
        let file = SourceFile {
            name: "t.csv".into(),
            path,
        };
        let mut sink = IssueSink::new(error_cap, 100);
        let mut seen = Vec::new();
        let mut bytes = 0u64;
        let stats = read_csv(
            &file,
            &SPEC,
            &LIMITS,
            &mut sink,
            &mut |n| bytes += n,
            |row, sink| {
                seen.push(row.get("id").to_string());
                if row.get("name") == "refuse" {
                    sink.error(row.issue("name", "refused", "refused by the callback"));
                    return false;
                }
                true
            },
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(bytes > 0);
        let issues = sink
            .errors
            .iter()
            .map(|i| (i.record, i.code.to_string()))
            .collect();
        (seen, issues, stats)
    }

    /// Records past several chunks of the tokenising thread keep their exact numbers, and
    /// the issues of the tokeniser and of the row callback stay in record order.
    #[test]
    fn issues_keep_record_order_across_chunks() {
        let mut content = String::from("id,name\n");
        for i in 0..3 * CHUNK_ROWS {
            let record = i + 2;
            match record {
                513 | 1025 => content.push_str(&format!("{i}\n")),
                514 | 1026 => content.push_str(&format!("{i},refuse\n")),
                _ => content.push_str(&format!("{i},n{i}\n")),
            }
        }
        content.push_str("last,\"open\n");
        let (seen, issues, stats) = read(&content, 100);
        assert_eq!(seen.len(), 3 * CHUNK_ROWS - 2);
        assert_eq!(
            issues,
            vec![
                (Some(513), "ragged_row".to_string()),
                (Some(514), "refused".to_string()),
                (Some(1025), "ragged_row".to_string()),
                (Some(1026), "refused".to_string()),
                (
                    Some(3 * CHUNK_ROWS as u64 + 2),
                    "line_break_in_field".to_string()
                ),
                (
                    Some(3 * CHUNK_ROWS as u64 + 2),
                    "unterminated_quote".to_string()
                ),
            ]
        );
        assert_eq!(stats.rows, 3 * CHUNK_ROWS as u64 + 1);
        assert_eq!(stats.rejected, 5);
    }

    /// The error cap stops the rows being judged at once, however far the tokeniser read.
    #[test]
    fn the_error_cap_stops_reading_mid_chunk() {
        let mut content = String::from("id,name\n");
        for i in 0..4 * CHUNK_ROWS {
            content.push_str(&format!(
                "{i},{}\n",
                if i % 7 == 3 { "refuse" } else { "x" }
            ));
        }
        let (seen, issues, stats) = read(&content, 2);
        assert_eq!(
            seen,
            ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]
        );
        assert_eq!(issues.len(), 2);
        assert_eq!(issues[1].0, Some(12));
        assert_eq!(stats.rows, 11);
    }
}
