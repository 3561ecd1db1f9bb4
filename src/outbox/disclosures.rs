//! The disclosure log (FERPA §99.32): each invitation and weekly digest a mail server or
//! SMS gateway accepted, recorded by the dispatcher when the transport accepted it — the
//! recipient address, the time, the students it was about, and the exact text handed to
//! the transport (subject and body) with its SHA-256. The text is kept for
//! `outbox.disclosure_text_days` ([`expire_texts`]); after that, and after the guardian's
//! erasure ([`erase_contact`]), only the kind, students, time and hash stay.

use super::store::Claimed;
use super::{Channel, MessageKind, Outgoing};
use crate::db;
use crate::domain::TenantId;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};
use serde::Serialize;
use std::collections::HashMap;

pub mod text;

/// Whom and what a sent message was about, as its kind knows it
/// ([`crate::outbox::port::MessageKindHandler::disclosed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About {
    /// The guardian it went to.
    pub contact_id: i64,
    /// SIS ids of the students it was about.
    pub students: Vec<String>,
}

/// What each claimed row was about, from the rows its kind references (`referenced`:
/// `(referenced row id, its tenant, what it was about)`), keyed by outbox row id. A claim
/// whose referenced row is gone or belongs to another tenant has no entry.
pub fn about_claims(
    claimed: &[&Claimed],
    referenced: impl IntoIterator<Item = (i64, TenantId, About)>,
) -> HashMap<i64, About> {
    let by_ref: HashMap<i64, &Claimed> = claimed.iter().map(|c| (c.ref_id, *c)).collect();
    referenced
        .into_iter()
        .filter_map(|(ref_id, tenant, about)| {
            let claim = by_ref.get(&ref_id)?;
            (claim.tenant_id == tenant).then_some((claim.id, about))
        })
        .collect()
}

/// One message the transport accepted, to record.
#[derive(Debug, Clone)]
pub struct Accepted<'a> {
    /// Tenant.
    pub tenant: TenantId,
    /// `invitation` or `digest`.
    pub kind: MessageKind,
    /// The invitation or digest delivery.
    pub ref_id: i64,
    /// Channel.
    pub channel: Channel,
    /// What was handed to the transport.
    pub message: &'a Outgoing,
    /// Its hash and stored text ([`Sealed::of`] `message`).
    pub sealed: &'a Sealed,
    /// When the transport accepted it.
    pub at: DateTime<Utc>,
    /// Whom and what about.
    pub about: &'a About,
}

/// What the log stores of a message's text: its hash and its compressed body, computed
/// before the recording transaction (CPU work that should not hold a connection or, on
/// SQLite, the write lock).
#[derive(Debug, Clone)]
pub struct Sealed {
    /// [`content_sha256`] of the subject and body.
    pub sha256: String,
    /// The body, compressed ([`text::compress`]).
    pub body_deflate: Vec<u8>,
}

impl Sealed {
    /// The hash and compressed body of `message`.
    pub fn of(message: &Outgoing) -> Self {
        Self {
            sha256: content_sha256(message.subject.as_deref(), &message.body),
            body_deflate: text::compress(&message.body),
        }
    }
}

/// SHA-256 (hex) of what was sent: the body of a text; for an email the subject, an empty
/// line and the body (`subject + "\n\n" + body`).
pub fn content_sha256(subject: Option<&str>, body: &str) -> String {
    let text = match subject {
        Some(subject) => format!("{subject}\n\n{body}"),
        None => body.to_string(),
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    crate::secrets::to_hex(digest.as_ref())
}

/// Entries per INSERT: 11 values each, far below either engine's limit on bind
/// parameters, and short statements (on PostgreSQL, 100-row chunks beat 1000-row ones).
const INSERT_CHUNK: usize = 100;

/// Records `accepted` in the caller's transaction (with the students of each): one
/// multi-row INSERT for the entries and one for their students per [`INSERT_CHUNK`]
/// entries. The body is stored compressed ([`text`]); the hash is of the text as sent.
pub async fn record<C: ConnectionTrait>(conn: &C, accepted: &[Accepted<'_>]) -> Result<(), DbErr> {
    for chunk in chunks(accepted) {
        let ids = insert_entries(conn, &chunk).await?;
        insert_students(conn, &chunk, &ids).await?;
    }
    Ok(())
}

/// `accepted` in chunks of at most [`INSERT_CHUNK`] entries, no two of a chunk about the
/// same message (kind and reference): the ids an INSERT returns are matched back by it.
fn chunks<'a, 'b>(accepted: &'a [Accepted<'b>]) -> Vec<Vec<&'a Accepted<'b>>> {
    let mut out: Vec<Vec<&Accepted<'_>>> = Vec::new();
    let mut keys = std::collections::HashSet::new();
    for entry in accepted {
        let key = (entry.kind, entry.ref_id);
        let full = out.last().is_none_or(|c| c.len() >= INSERT_CHUNK);
        if full || keys.contains(&key) {
            out.push(Vec::with_capacity(INSERT_CHUNK.min(accepted.len())));
            keys.clear();
        }
        keys.insert(key);
        if let Some(chunk) = out.last_mut() {
            chunk.push(entry);
        }
    }
    out
}

/// An id an insert returned, with the message it is about.
#[derive(Debug, FromQueryResult)]
struct Inserted {
    id: i64,
    kind: String,
    ref_id: i64,
}

/// Inserts the entries of `chunk` in one statement; their ids, by (kind, reference).
async fn insert_entries<C: ConnectionTrait>(
    conn: &C,
    chunk: &[&Accepted<'_>],
) -> Result<HashMap<(String, i64), i64>, DbErr> {
    const COLUMNS: usize = 11;
    let mut values = Vec::with_capacity(chunk.len() * COLUMNS);
    let mut rows = Vec::with_capacity(chunk.len());
    for (i, entry) in chunk.iter().enumerate() {
        let message = entry.message;
        values.extend([
            Value::BigInt(Some(entry.tenant.0)),
            entry.kind.as_str().into(),
            Value::BigInt(Some(entry.ref_id)),
            Value::BigInt(Some(entry.about.contact_id)),
            entry.channel.as_str().into(),
            message.to.as_str().into(),
            Value::String(message.subject.clone()),
            Value::String(None),
            Value::Bytes(Some(entry.sealed.body_deflate.clone())),
            entry.sealed.sha256.as_str().into(),
            Value::ChronoDateTimeUtc(Some(entry.at)),
        ]);
        let first = i * COLUMNS + 1;
        let marks: Vec<String> = (first..first + COLUMNS).map(|n| format!("${n}")).collect();
        rows.push(format!("({})", marks.join(", ")));
    }
    let inserted: Vec<Inserted> = db::rows::query_as(
        conn,
        &format!(
            "INSERT INTO disclosures (tenant_id, kind, ref_id, contact_id, channel, recipient, subject, body, body_deflate, \
               content_sha256, accepted_at) VALUES {} RETURNING id, kind, ref_id",
            rows.join(", ")
        ),
        values,
    )
    .await?;
    if inserted.len() != chunk.len() {
        return Err(DbErr::Custom(format!(
            "the disclosure insert returned {} ids for {} entries",
            inserted.len(),
            chunk.len()
        )));
    }
    Ok(inserted
        .into_iter()
        .map(|row| ((row.kind, row.ref_id), row.id))
        .collect())
}

/// Inserts the students of the entries of `chunk` (entry ids in `ids`), deduplicated per
/// entry, in statements of at most [`INSERT_CHUNK`] entries' worth of rows.
async fn insert_students<C: ConnectionTrait>(
    conn: &C,
    chunk: &[&Accepted<'_>],
    ids: &HashMap<(String, i64), i64>,
) -> Result<(), DbErr> {
    let mut rows: Vec<(i64, i64, &str)> = Vec::new();
    for entry in chunk {
        let id = ids
            .get(&(entry.kind.as_str().to_string(), entry.ref_id))
            .copied()
            .ok_or_else(|| DbErr::Custom("the disclosure insert returned no id".into()))?;
        let mut students: Vec<&str> = entry.about.students.iter().map(String::as_str).collect();
        students.sort_unstable();
        students.dedup();
        rows.extend(students.into_iter().map(|s| (id, entry.tenant.0, s)));
    }
    for part in rows.chunks(INSERT_CHUNK * 4) {
        let mut values = Vec::with_capacity(part.len() * 3);
        let mut marks = Vec::with_capacity(part.len());
        for (i, (id, tenant, student)) in part.iter().enumerate() {
            values.extend([
                Value::BigInt(Some(*id)),
                Value::BigInt(Some(*tenant)),
                (*student).into(),
            ]);
            marks.push(format!("(${}, ${}, ${})", i * 3 + 1, i * 3 + 2, i * 3 + 3));
        }
        db::exec(
            conn,
            &format!(
                "INSERT INTO disclosure_students (disclosure_id, tenant_id, student_source_id) VALUES {}",
                marks.join(", ")
            ),
            values,
        )
        .await?;
    }
    Ok(())
}

/// Redacts what the log holds of guardian `contact` of `tenant` (for an erasure, in the
/// caller's transaction): the contact, address and text go; the kind, students, time and
/// hash stay. Returns how many entries.
pub async fn erase_contact<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    contact: i64,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(db::exec(
        conn,
        "UPDATE disclosures SET contact_id = NULL, recipient = NULL, subject = NULL, body = NULL, body_deflate = NULL, \
           redacted_at = COALESCE(redacted_at, $3) \
         WHERE tenant_id = $1 AND contact_id = $2",
        vec![
            Value::BigInt(Some(tenant.0)),
            Value::BigInt(Some(contact)),
            Value::ChronoDateTimeUtc(Some(now)),
        ],
    )
    .await?
    .rows_affected())
}

/// Removes the text of up to `limit` entries accepted before `cutoff` (the retention is
/// over; the hash stays). Walks the (redacted_at, accepted_at) index: only rows still
/// holding text are read. Returns how many.
pub async fn expire_texts<C: ConnectionTrait>(
    conn: &C,
    cutoff: DateTime<Utc>,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(db::exec(
        conn,
        &format!(
            "UPDATE disclosures SET subject = NULL, body = NULL, body_deflate = NULL, redacted_at = $2 \
             WHERE id IN (SELECT id FROM disclosures WHERE redacted_at IS NULL AND accepted_at < $1 \
             ORDER BY accepted_at LIMIT {limit})"
        ),
        vec![
            Value::ChronoDateTimeUtc(Some(cutoff)),
            Value::ChronoDateTimeUtc(Some(now)),
        ],
    )
    .await?
    .rows_affected())
}

/// One entry of the disclosure log, as the admin API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Disclosure {
    /// Entry id.
    pub id: String,
    /// `invitation` or `digest`.
    pub kind: String,
    /// The invitation or digest delivery id.
    pub ref_id: String,
    /// The guardian (null once erased).
    pub contact_id: Option<String>,
    /// SIS ids of the students it was about.
    pub students: Vec<String>,
    /// `email` or `sms`.
    pub channel: String,
    /// The address it went to (null once erased).
    pub recipient: Option<String>,
    /// The email subject sent (null for SMS, after the retention, or once erased).
    pub subject: Option<String>,
    /// The text sent (null after the retention or once erased).
    pub body: Option<String>,
    /// SHA-256 (hex) of what was sent: the SMS body, or subject + "\n\n" + body.
    pub content_sha256: String,
    /// When the mail server or SMS gateway accepted it (UTC).
    pub accepted_at: DateTime<Utc>,
    /// When its text was removed (retention or erasure), if it was.
    pub redacted_at: Option<DateTime<Utc>>,
}

/// An entry as stored.
#[derive(Debug, FromQueryResult)]
struct Row {
    id: i64,
    kind: String,
    ref_id: i64,
    contact_id: Option<i64>,
    channel: String,
    recipient: Option<String>,
    subject: Option<String>,
    body: Option<String>,
    body_deflate: Option<Vec<u8>>,
    content_sha256: String,
    accepted_at: DateTime<Utc>,
    redacted_at: Option<DateTime<Utc>>,
}

impl Row {
    /// The body sent: stored plain before the text was compressed (migration 000023),
    /// compressed since. A text that cannot be read back is logged and shown as absent
    /// (the hash still stands for it) rather than failing the whole page.
    fn body(&mut self) -> Option<String> {
        if let Some(body) = self.body.take() {
            return Some(body);
        }
        let packed = self.body_deflate.take()?;
        match text::decompress(&packed) {
            Ok(body) => Some(body),
            Err(e) => {
                tracing::error!(id = self.id, error = %e, "cannot read a disclosure text");
                None
            }
        }
    }
}

/// A student of an entry.
#[derive(Debug, FromQueryResult)]
struct StudentRow {
    disclosure_id: i64,
    student_source_id: String,
}

/// What a page of the log is narrowed to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    /// Entries about this student (SIS id).
    pub student: Option<&'a str>,
    /// Entries sent to this guardian.
    pub contact: Option<i64>,
}

const COLUMNS: &str = "d.id, d.kind, d.ref_id, d.contact_id, d.channel, d.recipient, d.subject, d.body, \
     d.body_deflate, d.content_sha256, d.accepted_at, d.redacted_at";

/// A page of `tenant`'s log, newest first: entries with an id below `before`, at most
/// `limit`, and the cursor of the next page. A student's entries walk the
/// (tenant, student, entry) key; a guardian's the (tenant, contact, id) index.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    filter: Filter<'_>,
    before: Option<i64>,
    limit: u64,
) -> Result<(Vec<Disclosure>, Option<String>), DbErr> {
    let tail = format!("LIMIT {}", limit.saturating_add(1));
    let before = Value::BigInt(Some(before.unwrap_or(i64::MAX)));
    let (sql, values) = match (filter.student, filter.contact) {
        (Some(student), contact) => {
            let mut f = db::Filters::new(
                &format!(
                    "SELECT {COLUMNS} FROM disclosure_students s JOIN disclosures d ON d.id = s.disclosure_id \
                     WHERE s.tenant_id = $1 AND s.student_source_id = $2 AND s.disclosure_id < $3"
                ),
                vec![Value::BigInt(Some(tenant.0)), student.into(), before],
            );
            if let Some(contact) = contact {
                f.and("d.contact_id =", contact);
            }
            f.finish(&format!("ORDER BY s.disclosure_id DESC {tail}"))
        }
        (None, Some(contact)) => db::Filters::new(
            &format!(
                "SELECT {COLUMNS} FROM disclosures d WHERE d.tenant_id = $1 AND d.contact_id = $2 AND d.id < $3"
            ),
            vec![Value::BigInt(Some(tenant.0)), contact.into(), before],
        )
        .finish(&format!("ORDER BY d.id DESC {tail}")),
        (None, None) => db::Filters::new(
            &format!("SELECT {COLUMNS} FROM disclosures d WHERE d.tenant_id = $1 AND d.id < $2"),
            vec![Value::BigInt(Some(tenant.0)), before],
        )
        .finish(&format!("ORDER BY d.id DESC {tail}")),
    };
    let rows: Vec<Row> = db::rows::query_as(conn, &sql, values).await?;
    let mut students = students_of(conn, rows.iter().map(|r| r.id)).await?;
    let items = rows
        .into_iter()
        .map(|mut row| Disclosure {
            body: row.body(),
            id: row.id.to_string(),
            kind: row.kind,
            ref_id: row.ref_id.to_string(),
            contact_id: row.contact_id.map(|c| c.to_string()),
            students: students.remove(&row.id).unwrap_or_default(),
            channel: row.channel,
            recipient: row.recipient,
            subject: row.subject,
            content_sha256: row.content_sha256,
            accepted_at: row.accepted_at,
            redacted_at: row.redacted_at,
        })
        .collect();
    Ok(db::page(items, limit, |d| d.id.clone()))
}

/// The students of entries `ids`, by entry.
async fn students_of<C: ConnectionTrait>(
    conn: &C,
    ids: impl Iterator<Item = i64>,
) -> Result<HashMap<i64, Vec<String>>, DbErr> {
    let ids: Vec<i64> = ids.collect();
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows: Vec<StudentRow> = db::rows::query_as(
        conn,
        &format!(
            "SELECT disclosure_id, student_source_id FROM disclosure_students \
             WHERE disclosure_id IN ({}) ORDER BY student_source_id",
            db::id_list(ids)
        ),
        vec![],
    )
    .await?;
    for row in rows {
        out.entry(row.disclosure_id)
            .or_default()
            .push(row.student_source_id);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_subject_and_body() {
        let sms = content_sha256(None, "hello");
        assert_eq!(sms.len(), 64);
        assert_ne!(sms, content_sha256(Some(""), "hello"));
        assert_eq!(
            content_sha256(Some("Hi"), "there"),
            content_sha256(None, "Hi\n\nthere")
        );
    }
}
