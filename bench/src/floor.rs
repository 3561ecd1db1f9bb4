//! The "engine floor": how long the database engine itself needs to load every row the first
//! import writes — schools, students, staff, classes, enrollments, contacts and
//! student–contact links — into the product's real schema, with the plainest fast method of
//! the engine, measured in the same run on the same machine, so the import's time can be read
//! as a multiple of it.
//!
//! The floor runs on its own fresh database, migrated with the product's migrations
//! ([`parent_connection::db::migrate`]) and holding one tenant, so the tables carry their
//! real indexes, unique constraints and foreign keys. In one transaction
//! ([`ImportConn::bulk_insert`], the import's own bulk path):
//!
//! - SQLite: one prepared `INSERT` stepped once per row (SQLite C API on sqlx's handle).
//! - PostgreSQL: `COPY … FROM STDIN` straight into the real tables.
//!
//! Rows whose foreign keys name other rows by SIS id (enrollments, links) are loaded the same
//! way into a temporary table, then moved by one `INSERT … SELECT` that joins on the source
//! ids through the unique `(tenant_id, source_id)` indexes.
//!
//! The CSV files are read the way the import reads them (streamed on a blocking thread,
//! overlapping with the database writes) but without validation or phone/email
//! normalisation.

use anyhow::{Context, Result, bail};
use parent_connection::db::ImportConn;
use parent_connection_testkit::generate::CONTACT_PREFIX;
use sea_orm::{DatabaseConnection, DbBackend, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

const BATCH_ROWS: usize = 10_000;

/// Rows loaded by the floor, per table.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct FloorRows {
    /// `schools` rows.
    pub schools: u64,
    /// `students` rows.
    pub students: u64,
    /// `staff` rows.
    pub staff: u64,
    /// `classes` rows.
    pub classes: u64,
    /// `enrollments` rows.
    pub enrollments: u64,
    /// `contacts` rows.
    pub contacts: u64,
    /// `student_contacts` rows.
    pub links: u64,
}

impl FloorRows {
    /// Every row.
    pub fn total(&self) -> u64 {
        self.schools
            + self.students
            + self.staff
            + self.classes
            + self.enrollments
            + self.contacts
            + self.links
    }

    /// `(table, rows)` in load order.
    pub fn named(&self) -> [(&'static str, u64); 7] {
        [
            ("schools", self.schools),
            ("students", self.students),
            ("staff", self.staff),
            ("classes", self.classes),
            ("enrollments", self.enrollments),
            ("contacts", self.contacts),
            ("links", self.links),
        ]
    }
}

/// What the floor does on `backend`, in a few words (for the report).
pub fn method(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => {
            "COPY FROM STDIN into the real tables (a temp table + INSERT … SELECT on source ids for enrollments and links), one transaction"
        }
        _ => {
            "one prepared INSERT stepped per row into the real tables (a temp table + INSERT … SELECT on source ids for enrollments and links), one transaction"
        }
    }
}

/// Loads every row of the set in `dir` into the real tables of `db`, a freshly migrated
/// database holding the one tenant `bench`, and returns the row counts.
pub async fn run(db: &DatabaseConnection, dir: &Path) -> Result<FloorRows> {
    let backend = db.get_database_backend();
    if !matches!(backend, DbBackend::Sqlite | DbBackend::Postgres) {
        bail!("no engine floor for {backend:?}");
    }
    let mut conn = ImportConn::begin(db)
        .await
        .context("cannot begin the floor's transaction")?;
    let tenant: i64 = conn
        .query(
            "SELECT id FROM tenants WHERE slug = $1",
            vec![Value::from("bench")],
        )
        .await?
        .first()
        .context("the floor's database has no tenant 'bench'")?
        .get("id")?;
    // A constant written into the SQL text of the set-based inserts (an untyped literal, so
    // PostgreSQL reads it as a timestamp), and sent as text through the bulk path.
    let now = chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S%.6f+00:00")
        .to_string();
    let mut rows = FloorRows::default();
    let text = |v: &str| Value::String((!v.is_empty()).then(|| v.to_string()));
    let id = Value::BigInt(Some(tenant));
    let stamp = Value::String(Some(now.clone()));

    // Schools (orgs of type school).
    let mut loader = Loader::new(&mut conn);
    let (mut receiver, reader) =
        read_rows(dir.join("orgs.csv"), &["sourcedId", "name", "type"], |_| {
            true
        });
    while let Some(batch) = receiver.recv().await {
        for r in batch.iter().filter(|r| r[2] == "school") {
            loader
                .push(
                    Table::Schools,
                    vec![
                        id.clone(),
                        text(&r[0]),
                        text(&r[1]),
                        "active".into(),
                        stamp.clone(),
                        stamp.clone(),
                    ],
                )
                .await?;
        }
    }
    join_reader(reader, "orgs.csv").await?;

    // Staff roles (few rows): who in users.csv is staff, and as what.
    let (mut receiver, reader) =
        read_rows(dir.join("roles.csv"), &["userSourcedId", "role"], |r| {
            r.get(1) != Some("student")
        });
    let mut staff_roles: HashMap<String, String> = HashMap::new();
    while let Some(batch) = receiver.recv().await {
        for mut r in batch {
            let role = r.pop().unwrap_or_default();
            staff_roles.entry(r.swap_remove(0)).or_insert(role);
        }
    }
    join_reader(reader, "roles.csv").await?;

    // Users: contacts, staff, students.
    let (mut receiver, reader) = read_rows(
        dir.join("users.csv"),
        &[
            "sourcedId",
            "givenName",
            "familyName",
            "email",
            "sms",
            "phone",
        ],
        |_| true,
    );
    while let Some(batch) = receiver.recv().await {
        for r in batch {
            if r[0].starts_with(CONTACT_PREFIX) {
                let phone = if r[4].is_empty() { &r[5] } else { &r[4] };
                let row = vec![
                    id.clone(),
                    text(&r[0]),
                    text(&r[0]),
                    text(&r[1]),
                    text(&r[2]),
                    text(&r[3]),
                    text(phone),
                    stamp.clone(),
                    stamp.clone(),
                ];
                loader.push(Table::Contacts, row).await?;
            } else if let Some(role) = staff_roles.get(&r[0]) {
                let row = vec![
                    id.clone(),
                    text(&r[0]),
                    text(&r[1]),
                    text(&r[2]),
                    text(&r[3]),
                    text(role),
                    "active".into(),
                    stamp.clone(),
                    stamp.clone(),
                ];
                loader.push(Table::Staff, row).await?;
            } else {
                let row = vec![
                    id.clone(),
                    text(&r[0]),
                    text(&r[1]),
                    text(&r[2]),
                    "active".into(),
                    stamp.clone(),
                    stamp.clone(),
                ];
                loader.push(Table::Students, row).await?;
            }
        }
    }
    join_reader(reader, "users.csv").await?;

    // Classes.
    let (mut receiver, reader) = read_rows(
        dir.join("classes.csv"),
        &["sourcedId", "orgSourcedId", "title"],
        |_| true,
    );
    while let Some(batch) = receiver.recv().await {
        for r in batch {
            let row = vec![
                id.clone(),
                text(&r[0]),
                text(&r[1]),
                text(&r[2]),
                "active".into(),
                stamp.clone(),
                stamp.clone(),
            ];
            loader.push(Table::Classes, row).await?;
        }
    }
    join_reader(reader, "classes.csv").await?;

    // Enrollments and links, staged with their SIS ids.
    let temp = match backend {
        DbBackend::Postgres => "CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP",
        _ => "CREATE TEMPORARY TABLE {} ({})",
    };
    for table in [Table::EnrollmentStage, Table::LinkStage] {
        let columns: Vec<String> = table
            .columns()
            .iter()
            .map(|c| format!("{c} TEXT"))
            .collect();
        let create = temp
            .replacen("{}", table.name(), 1)
            .replacen("{}", &columns.join(", "), 1);
        loader.conn.exec(&create, vec![]).await?;
    }
    for (file, columns, table) in [
        (
            "enrollments.csv",
            &["classSourcedId", "userSourcedId", "role"][..],
            Table::EnrollmentStage,
        ),
        (
            "relationships.csv",
            &[
                "userSourcedId",
                "relationshipUserSourcedId",
                "relationshipRole",
            ][..],
            Table::LinkStage,
        ),
    ] {
        let (mut receiver, reader) = read_rows(dir.join(file), columns, |_| true);
        while let Some(batch) = receiver.recv().await {
            for r in batch {
                loader
                    .push(table, r.iter().map(|v| text(v)).collect())
                    .await?;
            }
        }
        join_reader(reader, file).await?;
    }
    loader.flush_all().await?;
    let loaded = loader.loaded;
    for table in [
        Table::Schools,
        Table::Students,
        Table::Staff,
        Table::Classes,
        Table::Contacts,
    ] {
        let n = loaded.get(&table).copied().unwrap_or(0);
        match table {
            Table::Schools => rows.schools = n,
            Table::Students => rows.students = n,
            Table::Staff => rows.staff = n,
            Table::Classes => rows.classes = n,
            _ => rows.contacts = n,
        }
    }
    rows.enrollments = conn
        .exec(
            &format!(
                "INSERT INTO enrollments (tenant_id, class_id, role, person_id, status, created_at, updated_at) \
                 SELECT {tenant}, c.id, e.role, COALESCE(s.id, t.id), 'active', '{now}', '{now}' \
                 FROM floor_enrollments e \
                 JOIN classes c ON c.tenant_id = {tenant} AND c.source_id = e.class_key \
                 LEFT JOIN students s ON e.role = 'student' AND s.tenant_id = {tenant} AND s.source_id = e.person_key \
                 LEFT JOIN staff t ON e.role <> 'student' AND t.tenant_id = {tenant} AND t.source_id = e.person_key \
                 WHERE COALESCE(s.id, t.id) IS NOT NULL"
            ),
            vec![],
        )
        .await
        .context("cannot insert into enrollments")?;
    rows.links = conn
        .exec(
            &format!(
                "INSERT INTO student_contacts (tenant_id, student_id, contact_id, relationship, status, first_seen_at, last_seen_at, updated_at) \
                 SELECT {tenant}, s.id, c.id, l.relationship, 'active', '{now}', '{now}', '{now}' \
                 FROM floor_links l \
                 JOIN students s ON s.tenant_id = {tenant} AND s.source_id = l.student_key \
                 JOIN contacts c ON c.tenant_id = {tenant} AND c.source_key = l.contact_key"
            ),
            vec![],
        )
        .await
        .context("cannot insert into student_contacts")?;
    for (table, moved) in [
        (Table::EnrollmentStage, rows.enrollments),
        (Table::LinkStage, rows.links),
    ] {
        let staged = loaded.get(&table).copied().unwrap_or(0);
        if staged != moved {
            bail!(
                "{staged} rows staged in {} but {moved} inserted (unresolved source ids)",
                table.name()
            );
        }
        conn.exec(&format!("DROP TABLE {}", table.name()), vec![])
            .await?;
    }
    conn.commit()
        .await
        .context("cannot commit the engine floor")?;
    Ok(rows)
}

/// A table the floor appends to through the bulk path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Table {
    Schools,
    Students,
    Staff,
    Classes,
    Contacts,
    EnrollmentStage,
    LinkStage,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Self::Schools => "schools",
            Self::Students => "students",
            Self::Staff => "staff",
            Self::Classes => "classes",
            Self::Contacts => "contacts",
            Self::EnrollmentStage => "floor_enrollments",
            Self::LinkStage => "floor_links",
        }
    }
    fn columns(self) -> &'static [&'static str] {
        match self {
            Self::Schools => &[
                "tenant_id",
                "source_id",
                "name",
                "status",
                "created_at",
                "updated_at",
            ],
            Self::Students => &[
                "tenant_id",
                "source_id",
                "given_name",
                "family_name",
                "status",
                "created_at",
                "updated_at",
            ],
            Self::Staff => &[
                "tenant_id",
                "source_id",
                "given_name",
                "family_name",
                "email",
                "role",
                "status",
                "created_at",
                "updated_at",
            ],
            Self::Classes => &[
                "tenant_id",
                "source_id",
                "school_source_id",
                "title",
                "status",
                "created_at",
                "updated_at",
            ],
            Self::Contacts => &[
                "tenant_id",
                "source_key",
                "source_id",
                "given_name",
                "family_name",
                "email",
                "mobile_phone",
                "created_at",
                "updated_at",
            ],
            Self::EnrollmentStage => &["class_key", "person_key", "role"],
            Self::LinkStage => &["student_key", "contact_key", "relationship"],
        }
    }
}

/// Batches rows per table and appends each full batch with [`ImportConn::bulk_insert`].
struct Loader<'c> {
    conn: &'c mut ImportConn,
    pending: HashMap<Table, Vec<Vec<Value>>>,
    loaded: HashMap<Table, u64>,
}

impl<'c> Loader<'c> {
    fn new(conn: &'c mut ImportConn) -> Self {
        Self {
            conn,
            pending: HashMap::new(),
            loaded: HashMap::new(),
        }
    }

    async fn push(&mut self, table: Table, row: Vec<Value>) -> Result<()> {
        let batch = self.pending.entry(table).or_default();
        batch.push(row);
        if batch.len() >= BATCH_ROWS {
            self.flush(table).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, table: Table) -> Result<()> {
        let batch = self.pending.remove(&table).unwrap_or_default();
        if batch.is_empty() {
            return Ok(());
        }
        let n = self
            .conn
            .bulk_insert(table.name(), table.columns(), &batch)
            .await
            .with_context(|| format!("cannot insert into {}", table.name()))?;
        *self.loaded.entry(table).or_default() += n;
        Ok(())
    }

    /// Parents before children: the foreign keys are checked per statement.
    async fn flush_all(&mut self) -> Result<()> {
        for table in [
            Table::Schools,
            Table::Students,
            Table::Staff,
            Table::Classes,
            Table::Contacts,
            Table::EnrollmentStage,
            Table::LinkStage,
        ] {
            self.flush(table).await?;
        }
        Ok(())
    }
}

type Reader = tokio::task::JoinHandle<Result<u64>>;

/// Streams the `columns` of the rows of `path` that `keep` accepts, in batches, from a
/// blocking thread.
fn read_rows(
    path: PathBuf,
    columns: &'static [&'static str],
    keep: fn(&csv::StringRecord) -> bool,
) -> (mpsc::Receiver<Vec<Vec<String>>>, Reader) {
    let (sender, receiver) = mpsc::channel(4);
    let reader = tokio::task::spawn_blocking(move || -> Result<u64> {
        let mut csv = csv::Reader::from_path(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let header = csv
            .headers()
            .with_context(|| format!("cannot read {}", path.display()))?
            .clone();
        let picks: Vec<usize> = columns
            .iter()
            .map(|name| {
                header
                    .iter()
                    .position(|h| h == *name)
                    .with_context(|| format!("{} has no '{name}' column", path.display()))
            })
            .collect::<Result<_>>()?;
        let mut record = csv::StringRecord::new();
        let mut picked = csv::StringRecord::new();
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let mut read = 0;
        while csv
            .read_record(&mut record)
            .with_context(|| format!("cannot read {}", path.display()))?
        {
            picked.clear();
            for &i in &picks {
                picked.push_field(record.get(i).unwrap_or_default());
            }
            if !keep(&picked) {
                continue;
            }
            batch.push(picked.iter().map(str::to_string).collect());
            read += 1;
            if batch.len() == BATCH_ROWS
                && sender
                    .blocking_send(std::mem::replace(
                        &mut batch,
                        Vec::with_capacity(BATCH_ROWS),
                    ))
                    .is_err()
            {
                return Ok(read);
            }
        }
        if !batch.is_empty() {
            let _ = sender.blocking_send(batch);
        }
        Ok(read)
    });
    (receiver, reader)
}

async fn join_reader(reader: Reader, file: &str) -> Result<u64> {
    reader
        .await
        .with_context(|| format!("the reader of {file} stopped"))?
}
