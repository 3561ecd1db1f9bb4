//! Cross-file rules (duplicate keys, references to rows that do not exist) as data, and
//! their evaluation in memory over the rule columns of every staged row ([`Collected`]).
//! Each finding names the file, record and column of the offending row; the order of a
//! report is rule by rule, then file and record.

use super::csv_file::IssueSink;
use super::files::FileSet;
use super::report::{EntityCounts, Issue};
use super::staging::{Batch, StageTable};
use crate::db::{ImportConn, RawRow};
use sea_orm::{DbErr, Value};
use std::collections::HashSet;

/// A key that must be unique within a staging table.
pub struct UniqueKey {
    /// Table checked.
    pub table: StageTable,
    /// Key columns.
    pub columns: &'static [&'static str],
    /// Header reported (the column of the key in the source file).
    pub header: &'static str,
    /// What the key is, for the message.
    pub what: &'static str,
}

/// A condition on the referencing row: `column` holds `value`.
#[derive(Debug, Clone, Copy)]
pub struct Equals {
    /// Column of the referencing table.
    pub column: &'static str,
    /// Value it must hold.
    pub value: &'static str,
}

/// A reference that must point at an existing row.
pub struct Reference {
    /// Table holding the reference.
    pub table: StageTable,
    /// Referencing column.
    pub column: &'static str,
    /// Only the referencing rows that meet this condition are checked.
    pub when: Option<Equals>,
    /// Table referenced.
    pub target: StageTable,
    /// Referenced column.
    pub target_column: &'static str,
    /// Header reported.
    pub header: &'static str,
    /// Message after the value, e.g. "is not a user in users.csv".
    pub problem: &'static str,
}

/// A reference with no extra condition.
pub const fn reference(
    table: StageTable,
    column: &'static str,
    target: StageTable,
    target_column: &'static str,
    header: &'static str,
    problem: &'static str,
) -> Reference {
    Reference {
        table,
        column,
        when: None,
        target,
        target_column,
        header,
        problem,
    }
}

/// Staging tables made from others once the keys and references hold (SDS v2.1 splits its
/// users into students, staff and contacts).
pub struct Derive {
    /// Columns the derivation reads, besides those the rules name.
    pub reads: &'static [(StageTable, &'static str)],
    /// Makes the derived tables' rule columns in memory.
    pub in_memory: fn(&mut Collected),
}

/// The cross-file rules of one format, as data (each format declares its own beside its
/// parser).
pub struct Rules {
    /// Keys unique within the file set.
    pub keys: &'static [UniqueKey],
    /// References between the files.
    pub references: &'static [Reference],
    /// Tables derived once the rules above hold.
    pub derive: Option<Derive>,
    /// References checked over what [`Rules::derive`] made.
    pub derived_references: &'static [Reference],
}

impl Rules {
    /// Every column a rule reads, per table.
    fn columns(&self) -> Vec<(StageTable, &'static str)> {
        let mut columns: Vec<(StageTable, &'static str)> = Vec::new();
        for key in self.keys {
            columns.extend(key.columns.iter().map(|c| (key.table, *c)));
        }
        for reference in self.references.iter().chain(self.derived_references) {
            columns.push((reference.table, reference.column));
            columns.extend(reference.when.map(|w| (reference.table, w.column)));
            columns.push((reference.target, reference.target_column));
        }
        if let Some(derive) = &self.derive {
            columns.extend_from_slice(derive.reads);
        }
        let mut unique = Vec::with_capacity(columns.len());
        for column in columns {
            if !unique.contains(&column) {
                unique.push(column);
            }
        }
        unique
    }

    /// Evaluates every rule over `collected`: keys, references, then (when those hold) the
    /// derivation and its references. Findings go to `sink`; rejected rows are counted in
    /// `entities`. Returns true when the derived tables were made.
    pub fn check(
        &self,
        collected: &mut Collected,
        files: &FileSet,
        sink: &mut IssueSink,
        entities: &mut EntityCounts,
    ) -> bool {
        for key in self.keys {
            let found = collected.duplicates(key, files, sink);
            super::entity_counts(entities, key.table).rejected += found;
        }
        for reference in self.references {
            let found = collected.dangling(reference, files, sink);
            super::entity_counts(entities, reference.table).rejected += found;
        }
        let Some(derive) = &self.derive else {
            return false;
        };
        if !sink.errors.is_empty() {
            return false;
        }
        (derive.in_memory)(collected);
        for reference in self.derived_references {
            let found = collected.dangling(reference, files, sink);
            super::entity_counts(entities, reference.table).rejected += found;
        }
        true
    }
}

/// Where a staged row came from: file (`src`) in the high bits, record below, so the
/// order of places is the report's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place(u64);

impl Place {
    const REC_BITS: u32 = 40;

    /// The place of record `rec` of file `src`.
    pub fn new(src: u64, rec: u64) -> Self {
        Self((src << Self::REC_BITS) | (rec & ((1 << Self::REC_BITS) - 1)))
    }

    /// The file.
    pub fn src(self) -> usize {
        (self.0 >> Self::REC_BITS) as usize
    }

    /// The record.
    pub fn rec(self) -> u64 {
        self.0 & ((1 << Self::REC_BITS) - 1)
    }
}

/// Marks a NULL cell in [`Collection::ends`].
const NULL: u64 = 1 << 63;

/// The rule columns of one staging table's rows, their text end to end in one buffer.
pub struct Collection {
    table: StageTable,
    /// The collected columns, with their position among the table's staged values.
    columns: Vec<(&'static str, usize)>,
    places: Vec<Place>,
    text: String,
    /// End of each cell in `text`, row after row (`NULL` set: no value).
    ends: Vec<u64>,
}

impl Collection {
    /// An empty collection of `columns` of `table`.
    pub fn new(table: StageTable, columns: &[&'static str]) -> Self {
        let staged = table.columns();
        Self {
            table,
            columns: columns
                .iter()
                .map(|c| (*c, staged.iter().position(|s| s == c).unwrap_or(usize::MAX)))
                .collect(),
            places: Vec::new(),
            text: String::new(),
            ends: Vec::new(),
        }
    }

    /// Adds a row: one cell per collected column, in their order.
    pub fn push<'a>(&mut self, place: Place, cells: impl IntoIterator<Item = Option<&'a str>>) {
        self.places.push(place);
        for cell in cells {
            let end = match cell {
                Some(text) => {
                    self.text.push_str(text);
                    self.text.len() as u64
                }
                None => self.text.len() as u64 | NULL,
            };
            self.ends.push(end);
        }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.places.len()
    }

    /// Where row `row` came from.
    pub fn place(&self, row: usize) -> Place {
        self.places[row]
    }

    /// The value of `column` in row `row` (`None`: NULL, or a column not collected).
    pub fn get(&self, row: usize, column: &str) -> Option<&str> {
        let at = self.columns.iter().position(|(c, _)| *c == column)?;
        self.cell(row, at)
    }

    fn cell(&self, row: usize, at: usize) -> Option<&str> {
        let i = row * self.columns.len() + at;
        let end = self.ends[i];
        if end & NULL != 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] & !NULL };
        Some(&self.text[start as usize..end as usize])
    }

    fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|(c, _)| *c == name)
    }

    /// Adds the rule columns of the rows of a staged batch of this table.
    fn add(&mut self, batch: &Batch) {
        // Staged rows are `src, rec, sync_key, sync_hash`, then the table's columns.
        let int = |value: &Value| match value {
            Value::BigInt(Some(n)) => *n as u64,
            _ => 0,
        };
        for row in &batch.rows {
            let place = Place::new(int(&row[0]), int(&row[1]));
            let cells = self.columns.iter().map(|(_, at)| match row.get(at + 4) {
                Some(Value::String(Some(text))) => Some(text.as_str()),
                _ => None,
            });
            let cells: Vec<Option<&str>> = cells.collect();
            self.push(place, cells);
        }
    }
}

/// The rule columns of every staged row of a run, per table.
pub struct Collected {
    tables: Vec<Collection>,
}

impl Collected {
    /// Empty collections of the columns `rules` read.
    pub fn for_rules(rules: &Rules) -> Self {
        let mut tables: Vec<Collection> = Vec::new();
        for (table, column) in rules.columns() {
            match tables.iter_mut().find(|t| t.table == table) {
                Some(collection) => {
                    let at = table.columns().iter().position(|s| *s == column);
                    collection.columns.push((column, at.unwrap_or(usize::MAX)));
                }
                None => tables.push(Collection::new(table, &[column])),
            }
        }
        Self { tables }
    }

    /// Adds the rows of a staged batch.
    pub fn add(&mut self, batch: &Batch) {
        if let Some(collection) = self.tables.iter_mut().find(|t| t.table == batch.table) {
            collection.add(batch);
        }
    }

    /// The rows of `table`.
    pub fn table(&self, table: StageTable) -> Option<&Collection> {
        self.tables.iter().find(|t| t.table == table)
    }

    /// Puts `collection` in place of what its table held.
    pub fn replace(&mut self, collection: Collection) {
        self.tables.retain(|t| t.table != collection.table);
        self.tables.push(collection);
    }

    /// Reports every repeat of `key` after its first occurrence (lowest record), in file
    /// and record order, at most the error cap. Rows with a blank key column are not
    /// reported. Returns how many were.
    pub fn duplicates(&self, key: &UniqueKey, files: &FileSet, sink: &mut IssueSink) -> u64 {
        let Some(table) = self.table(key.table) else {
            return 0;
        };
        let at: Vec<usize> = key.columns.iter().filter_map(|c| table.column(c)).collect();
        let cells =
            |row: usize| -> Option<Vec<&str>> { at.iter().map(|i| table.cell(row, *i)).collect() };
        // Rows sorted by a hash of their key; rows of one hash are then told apart by
        // their text, so a collision never makes a duplicate.
        let mut keyed: Vec<(i64, usize)> = (0..table.len())
            .filter_map(|row| cells(row).map(|values| (super::hashing::hash_strs(&values), row)))
            .collect();
        keyed.sort_unstable();
        let mut found: Vec<(Place, u64, String)> = Vec::new();
        for run in keyed
            .chunk_by(|a, b| a.0 == b.0)
            .filter(|run| run.len() > 1)
        {
            let mut groups: Vec<(Vec<&str>, Vec<usize>)> = Vec::new();
            for (_, row) in run {
                let values = cells(*row).unwrap_or_default();
                match groups.iter_mut().find(|(v, _)| *v == values) {
                    Some((_, rows)) => rows.push(*row),
                    None => groups.push((values, vec![*row])),
                }
            }
            for (values, rows) in groups.iter().filter(|(_, rows)| rows.len() > 1) {
                let low = rows
                    .iter()
                    .map(|r| table.place(*r).rec())
                    .min()
                    .unwrap_or(0);
                let shown = values.join(" / ");
                for place in rows.iter().map(|r| table.place(*r)) {
                    if place.rec() > low {
                        found.push((place, low, shown.clone()));
                    }
                }
            }
        }
        drop(keyed);
        found.sort_unstable_by_key(|(place, _, _)| *place);
        found.truncate(sink.error_cap);
        for (place, low, value) in &found {
            sink.error(Issue::at(
                files.name(place.src()),
                place.rec(),
                Some(key.header),
                "duplicate_key",
                format!("duplicate {} '{value}' (first at record {low})", key.what),
            ));
        }
        found.len() as u64
    }

    /// Reports every value of `reference` that names no row of its target, in file and
    /// record order, at most the error cap. Returns how many were.
    pub fn dangling(&self, reference: &Reference, files: &FileSet, sink: &mut IssueSink) -> u64 {
        let Some(table) = self.table(reference.table) else {
            return 0;
        };
        let Some(at) = table.column(reference.column) else {
            return 0;
        };
        let targets: HashSet<&str> = match self.table(reference.target) {
            Some(target) => match target.column(reference.target_column) {
                Some(t) => (0..target.len())
                    .filter_map(|row| target.cell(row, t))
                    .collect(),
                None => HashSet::new(),
            },
            None => HashSet::new(),
        };
        let when = reference.when.map(|w| (table.column(w.column), w.value));
        let mut found: Vec<(Place, &str)> = Vec::new();
        for row in 0..table.len() {
            let Some(value) = table.cell(row, at) else {
                continue;
            };
            if let Some((column, wanted)) = when
                && column.and_then(|c| table.cell(row, c)) != Some(wanted)
            {
                continue;
            }
            if !targets.contains(value) {
                found.push((table.place(row), value));
            }
        }
        found.sort_unstable_by_key(|(place, _)| *place);
        found.truncate(sink.error_cap);
        for (place, value) in &found {
            sink.error(Issue::at(
                files.name(place.src()),
                place.rec(),
                Some(reference.header),
                "unknown_reference",
                format!("'{value}' {}", reference.problem),
            ));
        }
        found.len() as u64
    }
}

/// An optional file of a format whose absence, in a run that would deactivate rows,
/// refuses the run unless forced (the missing-file guard, SPEC §3.3).
pub struct GuardedFile {
    /// The file reported.
    pub file: &'static str,
    /// The files that must all be present for the deactivations to be trusted.
    pub needed: &'static [&'static str],
    /// How many rows the run deactivates that the file would have delivered.
    pub deactivated: fn(&EntityCounts) -> u64,
}

/// Emits the warnings of contacts that will not be offered for communication: a dropped
/// email, a dropped phone, or neither channel left.
/// The warning for a contact left with neither channel (no quote characters: it is
/// embedded in SQL).
pub const UNREACHABLE_CONTACT: &str = "the contact has neither a valid email nor a valid E.164 mobile: it is stored but not offered for communication";

/// Order of warnings in a report: file-level ones, skipped enrollments (found while
/// reading), then invalid emails, invalid phones and unreachable contacts (the order
/// [`contact_warnings`] adds them in).
pub fn warning_rank(code: &str) -> u8 {
    match code {
        super::sds_v21::ENROLLMENT_SKIPPED => 1,
        "invalid_email" => 2,
        "invalid_phone" => 3,
        "unreachable_contact" => 4,
        _ => 0,
    }
}

/// Reports contacts kept without a valid email or phone.
pub async fn contact_warnings(
    conn: &mut ImportConn,
    files: &FileSet,
    sink: &mut IssueSink,
) -> Result<(), DbErr> {
    let limit = sink.warning_cap + 1;
    let queries = [
        ("email_column", "email_warning", "invalid_email"),
        ("phone_column", "phone_warning", "invalid_phone"),
    ];
    for (column, warning, code) in queries {
        let total = conn
            .count(
                &format!("SELECT COUNT(*) AS n FROM s_contacts WHERE {warning} IS NOT NULL"),
                vec![],
            )
            .await?;
        let rows = conn.query(&format!("SELECT src, rec, {column} AS column_name, {warning} AS message FROM s_contacts WHERE {warning} IS NOT NULL ORDER BY src, rec LIMIT {limit}"),
            vec![],
        )
        .await?;
        push_warnings(sink, files, &rows, total, code)?;
    }
    let unreachable = "email IS NULL AND mobile_phone IS NULL";
    let total = conn
        .count(
            &format!("SELECT COUNT(*) AS n FROM s_contacts WHERE {unreachable}"),
            vec![],
        )
        .await?;
    let rows = conn
        .query(
            &format!(
                "SELECT src, rec, email_column AS column_name, '{UNREACHABLE_CONTACT}' AS message \
             FROM s_contacts WHERE {unreachable} ORDER BY src, rec LIMIT {limit}"
            ),
            vec![],
        )
        .await?;
    push_warnings(sink, files, &rows, total, "unreachable_contact")
}

fn push_warnings(
    sink: &mut IssueSink,
    files: &FileSet,
    rows: &[RawRow],
    total: i64,
    code: &'static str,
) -> Result<(), DbErr> {
    for row in rows {
        let src: i64 = row.get::<Option<i64>>("src")?.unwrap_or_default();
        let rec: i64 = row.get::<Option<i64>>("rec")?.unwrap_or_default();
        let column: Option<String> = row.get("column_name")?;
        let message: Option<String> = row.get("message")?;
        sink.warning(Issue::at(
            files.name(src as usize),
            rec as u64,
            column.as_deref(),
            code,
            message.unwrap_or_default(),
        ));
    }
    // Warnings past the fetched ones are only counted.
    sink.warning_count += (total as u64).saturating_sub(rows.len() as u64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::csv_file::SourceFile;
    use super::super::staging::StageTable::{Enrollments, Links, Students};
    use super::*;

    fn files() -> FileSet {
        let file = |name: &str| SourceFile {
            name: name.into(),
            path: name.into(),
        };
        FileSet {
            files: vec![("a", file("a.csv")), ("b", file("b.csv"))],
            total_bytes: 0,
        }
    }

    /// A staged batch of `table`: `(src, rec, values)`.
    fn batch(table: StageTable, rows: &[(i64, i64, &[Option<&str>])]) -> Batch {
        let rows = rows
            .iter()
            .map(|(src, rec, values)| {
                let mut row = vec![
                    Value::BigInt(Some(*src)),
                    Value::BigInt(Some(*rec)),
                    Value::BigInt(None),
                    Value::BigInt(None),
                ];
                row.extend(values.iter().map(|v| Value::String(v.map(str::to_string))));
                row
            })
            .collect();
        Batch { table, rows }
    }

    const LINK_KEY: UniqueKey = UniqueKey {
        table: Links,
        columns: &["student_id", "contact_key"],
        header: "Email",
        what: "link",
    };
    const ENROLLED_STUDENT: Reference = Reference {
        when: Some(Equals {
            column: "role",
            value: "student",
        }),
        ..reference(
            Enrollments,
            "person_id",
            Students,
            "source_id",
            "SIS ID",
            "is no student",
        )
    };
    const RULES: Rules = Rules {
        keys: &[LINK_KEY],
        references: &[ENROLLED_STUDENT],
        derive: None,
        derived_references: &[],
    };

    #[test]
    fn repeats_are_reported_after_the_first_record_in_file_order() {
        let mut collected = Collected::for_rules(&RULES);
        collected.add(&batch(
            Links,
            &[
                (1, 9, &[Some("s"), Some("c"), Some("parent")]),
                (0, 4, &[Some("s"), Some("c"), Some("parent")]),
                (0, 2, &[Some("s"), Some("c"), Some("other")]),
                (0, 3, &[Some("s"), None, Some("parent")]),
                (0, 5, &[Some("s"), None, Some("parent")]),
                (0, 6, &[Some("t"), Some("c"), Some("parent")]),
            ],
        ));
        let mut sink = IssueSink::new(10, 10);
        assert_eq!(collected.duplicates(&LINK_KEY, &files(), &mut sink), 2);
        let found: Vec<(&str, Option<u64>, &str)> = sink
            .errors
            .iter()
            .map(|e| (e.file.as_str(), e.record, e.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "a.csv",
                    Some(4),
                    "duplicate link 's / c' (first at record 2)"
                ),
                (
                    "b.csv",
                    Some(9),
                    "duplicate link 's / c' (first at record 2)"
                ),
            ],
            "blank keys are never duplicates"
        );
        let mut capped = IssueSink::new(1, 10);
        assert_eq!(collected.duplicates(&LINK_KEY, &files(), &mut capped), 1);
    }

    #[test]
    fn references_are_checked_only_where_their_condition_holds() {
        let mut collected = Collected::for_rules(&RULES);
        collected.add(&batch(Students, &[(0, 2, &[Some("s-1"), None, None])]));
        collected.add(&batch(
            Enrollments,
            &[
                (1, 3, &[Some("k"), Some("s-2"), Some("student")]),
                (1, 2, &[Some("k"), Some("s-1"), Some("student")]),
                (1, 4, &[Some("k"), Some("t-1"), Some("teacher")]),
                (1, 5, &[Some("k"), None, Some("student")]),
            ],
        ));
        let mut sink = IssueSink::new(10, 10);
        assert_eq!(
            collected.dangling(&ENROLLED_STUDENT, &files(), &mut sink),
            1
        );
        assert_eq!(sink.errors[0].record, Some(3));
        assert_eq!(sink.errors[0].message, "'s-2' is no student");
    }

    #[test]
    fn sds_v21_users_split_into_students_and_staff_in_memory() {
        let rules = &super::super::sds_v21::RULES;
        let mut collected = Collected::for_rules(rules);
        let user = |rec, id| (1, rec, [Some(id), None, None, None, None, None, None, None]);
        let users = [user(2, "stu"), user(3, "tea"), user(4, "both")];
        let users: Vec<(i64, i64, &[Option<&str>])> =
            users.iter().map(|(s, r, v)| (*s, *r, &v[..])).collect();
        collected.add(&batch(StageTable::Users, &users));
        let role = |rec, user, group| (2, rec, [Some(user), Some("org"), Some("x"), Some(group)]);
        let roles = [
            role(2, "stu", "student"),
            role(3, "tea", "staff"),
            role(4, "both", "staff"),
            role(5, "both", "student"),
        ];
        let roles: Vec<(i64, i64, &[Option<&str>])> =
            roles.iter().map(|(s, r, v)| (*s, *r, &v[..])).collect();
        collected.add(&batch(StageTable::Roles, &roles));
        (rules.derive.as_ref().unwrap().in_memory)(&mut collected);
        let ids = |table| {
            let rows = collected.table(table).unwrap();
            (0..rows.len())
                .map(|r| rows.get(r, "source_id").unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(Students), ["stu", "both"]);
        assert_eq!(ids(StageTable::Staff), ["tea"], "a student role wins");
    }
}
