//! The copies of an erased person's data outside the `contacts` row, and what erasure does
//! to each (docs/privacy.md lists them). Every lookup goes through an index on the contact
//! (or on ids found through one); the tenant's import reports are read page by page.

use crate::db;
use crate::domain::TenantId;
use crate::privacy::redact::{self, MARKER, Needles, Scope};
use crate::privacy::{PrivacyKey, Purpose};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};

/// Import reports read per statement while they are searched.
const REPORT_PAGE: u64 = 50;

/// Every value of a contact that may have been copied elsewhere.
#[derive(Debug, FromQueryResult)]
struct ContactValues {
    source_id: Option<String>,
    source_key: String,
    given_name: Option<String>,
    given_name_sync: Option<String>,
    family_name: Option<String>,
    family_name_sync: Option<String>,
    email: Option<String>,
    email_sync: Option<String>,
    mobile_phone: Option<String>,
    mobile_phone_sync: Option<String>,
}

/// One contact's erasure, in the caller's transaction.
pub(super) struct Scrub<'a> {
    pub tenant: TenantId,
    pub contact: i64,
    pub now: DateTime<Utc>,
    pub privacy: &'a PrivacyKey,
}

#[derive(FromQueryResult)]
struct IdRow {
    id: i64,
}

#[derive(FromQueryResult)]
struct RequestRow {
    id: i64,
    proposed: String,
    current: Option<String>,
    applied: Option<String>,
    reason: Option<String>,
}

#[derive(FromQueryResult)]
struct AuditRow {
    id: i64,
    before: Option<String>,
    after: Option<String>,
}

#[derive(FromQueryResult)]
struct ReportRow {
    id: i64,
    report: String,
}

impl Scrub<'_> {
    fn tenant(&self) -> Value {
        Value::BigInt(Some(self.tenant.0))
    }

    fn contact(&self) -> Value {
        Value::BigInt(Some(self.contact))
    }

    /// Requests about the pair (student, contact) only: values redacted, and their audit
    /// entries with them. For a contact still linked to another student.
    pub async fn pair<C: ConnectionTrait>(&self, conn: &C, student: i64) -> Result<(), DbErr> {
        let mut ids = self.requests(conn, Some(student)).await?;
        if let Some(values) = self.values(conn).await? {
            ids.extend(
                self.unlinked_requests(conn, student, &needles(&values))
                    .await?,
            );
        }
        let targets: Vec<String> = ids
            .iter()
            .map(|id| format!("contact_request:{id}"))
            .collect();
        self.redact_audit(conn, &targets, Scope::Everything).await
    }

    async fn values<C: ConnectionTrait>(&self, conn: &C) -> Result<Option<ContactValues>, DbErr> {
        let values = db::rows::query_as::<ContactValues, _>(
            conn,
            "SELECT source_id, source_key, given_name, given_name_sync, family_name, family_name_sync, \
               email, email_sync, mobile_phone, mobile_phone_sync FROM contacts WHERE tenant_id = $1 AND id = $2",
            vec![self.tenant(), self.contact()],
        )
        .await?;
        Ok(values.into_iter().next())
    }

    /// Everything of the contact, before its row is deleted.
    pub async fn contact_everywhere<C: ConnectionTrait>(
        &self,
        conn: &C,
        student: i64,
    ) -> Result<(), DbErr> {
        let Some(values) = self.values(conn).await? else {
            return Ok(());
        };
        let needles = needles(&values);
        let mut ids = self.requests(conn, None).await?;
        ids.extend(self.unlinked_requests(conn, student, &needles).await?);
        let mut targets: Vec<String> = ids
            .iter()
            .map(|id| format!("contact_request:{id}"))
            .collect();
        targets.push(format!("contact:{}", self.contact));
        let invitations = self
            .ids(
                conn,
                "SELECT id FROM invitations WHERE tenant_id = $1 AND contact_id = $2",
            )
            .await?;
        targets.extend(invitations.iter().map(|id| format!("invitation:{id}")));
        self.audit_targets(conn, &targets, &needles).await?;
        self.exec(
            conn,
            &format!("UPDATE invitations SET recipient = '{MARKER}' WHERE tenant_id = $1 AND contact_id = $2"),
        )
        .await?;
        let digests = self
            .ids(
                conn,
                "SELECT id FROM digest_deliveries WHERE tenant_id = $1 AND contact_id = $2",
            )
            .await?;
        let codes = self
            .ids(
                conn,
                "SELECT id FROM sign_in_codes WHERE tenant_id = $1 AND contact_id = $2",
            )
            .await?;
        for (kind, ids) in [
            ("invitation", &invitations),
            ("digest", &digests),
            ("sign_in_code", &codes),
        ] {
            self.outbox(conn, kind, ids).await?;
        }
        for sql in [
            "DELETE FROM sign_in_codes WHERE tenant_id = $1 AND contact_id = $2",
            "DELETE FROM digest_unsubscribes WHERE tenant_id = $1 AND contact_id = $2",
            "DELETE FROM web_sessions WHERE tenant_id = $1 AND kind = 'contact' AND subject = CAST($2 AS TEXT)",
        ] {
            self.exec(conn, sql).await?;
        }
        let emails = [&values.email, &values.email_sync];
        for email in emails.into_iter().flatten() {
            let email = crate::outbox::suppressions::normalised(email);
            self.keep_hashed(
                conn,
                "email_suppressions",
                "email",
                Purpose::EmailSuppression,
                &email,
            )
            .await?;
        }
        let phones = [&values.mobile_phone, &values.mobile_phone_sync];
        for phone in phones.into_iter().flatten() {
            // Opt-outs are keyed hashes already; one kept from before them is hashed now.
            crate::outbox::consent::forget_number(conn, self.privacy, phone).await?;
        }
        crate::outbox::disclosures::erase_contact(conn, self.tenant, self.contact, self.now)
            .await?;
        self.reports(conn, &needles).await
    }

    async fn exec<C: ConnectionTrait>(&self, conn: &C, sql: &str) -> Result<u64, DbErr> {
        db::exec(conn, sql, vec![self.tenant(), self.contact()])
            .await
            .map(|r| r.rows_affected())
    }

    async fn ids<C: ConnectionTrait>(&self, conn: &C, sql: &str) -> Result<Vec<i64>, DbErr> {
        Ok(
            db::rows::query_as::<IdRow, _>(conn, sql, vec![self.tenant(), self.contact()])
                .await?
                .into_iter()
                .map(|r| r.id)
                .collect(),
        )
    }

    /// Redacts the values of the contact's requests (of one student, or all); returns
    /// their ids.
    async fn requests<C: ConnectionTrait>(
        &self,
        conn: &C,
        student: Option<i64>,
    ) -> Result<Vec<i64>, DbErr> {
        let mut sql = "SELECT id, proposed, current, applied, reason FROM contact_requests \
                       WHERE tenant_id = $1 AND contact_id = $2"
            .to_string();
        let mut values = vec![self.tenant(), self.contact()];
        if let Some(student) = student {
            sql.push_str(" AND student_id = $3");
            values.push(Value::BigInt(Some(student)));
        }
        let rows = db::rows::query_as::<RequestRow, _>(conn, &sql, values).await?;
        for row in &rows {
            redact_request(conn, row).await?;
        }
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    /// "Add" requests for `student` that never became a contact (rejected, or still
    /// pending) and propose one of the contact's values: they are about the same person,
    /// so they are redacted whole, and a pending one is rejected (there is no one left to
    /// add). Returns their ids.
    async fn unlinked_requests<C: ConnectionTrait>(
        &self,
        conn: &C,
        student: i64,
        needles: &Needles,
    ) -> Result<Vec<i64>, DbErr> {
        let rows = db::rows::query_as::<RequestRow, _>(
            conn,
            // By the student's SIS id: the (tenant, student_source_id, id) index. The `+`
            // keeps SQLite from walking the tenant's unlinked requests on (tenant, contact).
            "SELECT id, proposed, current, applied, reason FROM contact_requests \
             WHERE tenant_id = $1 AND +contact_id IS NULL AND student_source_id = \
               (SELECT source_id FROM students WHERE tenant_id = $1 AND id = $2)",
            vec![self.tenant(), Value::BigInt(Some(student))],
        )
        .await?;
        let mut ids = Vec::new();
        for row in rows.iter().filter(|r| needles.matches(&r.proposed)) {
            redact_request(conn, row).await?;
            db::exec(
                conn,
                "UPDATE contact_requests SET status = 'rejected', decided_at = $1, \
                   decided_by = 'system', reason = $2 WHERE id = $3 AND status = 'pending'",
                vec![
                    Value::ChronoDateTimeUtc(Some(self.now)),
                    super::REJECTED_BY_ERASURE.into(),
                    Value::BigInt(Some(row.id)),
                ],
            )
            .await?;
            ids.push(row.id);
        }
        Ok(ids)
    }

    /// Redacts the audit entries of requests about the contact whole, and those of its
    /// other targets where they quote it.
    async fn audit_targets<C: ConnectionTrait>(
        &self,
        conn: &C,
        targets: &[String],
        needles: &Needles,
    ) -> Result<(), DbErr> {
        let (requests, others): (Vec<String>, Vec<String>) = targets
            .iter()
            .cloned()
            .partition(|t| t.starts_with("contact_request:"));
        self.redact_audit(conn, &requests, Scope::Everything)
            .await?;
        self.redact_audit(conn, &others, Scope::Matching(needles))
            .await
    }

    async fn redact_audit<C: ConnectionTrait>(
        &self,
        conn: &C,
        targets: &[String],
        scope: Scope<'_>,
    ) -> Result<(), DbErr> {
        for chunk in targets.chunks(500) {
            let list = (0..chunk.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let mut values = vec![self.tenant()];
            values.extend(chunk.iter().map(|t| Value::from(t.clone())));
            let rows = db::rows::query_as::<AuditRow, _>(
                conn,
                &format!("SELECT id, before, after FROM audit_log WHERE tenant_id = $1 AND target IN ({list})"),
                values,
            )
            .await?;
            for row in rows {
                let before = row.before.as_deref().and_then(|t| redact::stored(t, scope));
                let after = row.after.as_deref().and_then(|t| redact::stored(t, scope));
                if before.is_none() && after.is_none() {
                    continue;
                }
                db::exec(
                    conn,
                    "UPDATE audit_log SET before = $1, after = $2 WHERE id = $3",
                    vec![
                        before.or(row.before).into(),
                        after.or(row.after).into(),
                        Value::BigInt(Some(row.id)),
                    ],
                )
                .await?;
            }
        }
        Ok(())
    }

    /// The contact's messages: the address and the server's answers redacted; those not
    /// sent yet are not sent (`suppressed`).
    async fn outbox<C: ConnectionTrait>(
        &self,
        conn: &C,
        kind: &str,
        ids: &[i64],
    ) -> Result<(), DbErr> {
        for chunk in ids.chunks(500) {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            db::exec(
                conn,
                &format!(
                    "UPDATE outbox SET recipient = '{MARKER}', \
                       last_error = CASE WHEN last_error IS NULL THEN NULL ELSE '{MARKER}' END, \
                       status = CASE WHEN status IN ('queued', 'sending') THEN 'suppressed' ELSE status END, \
                       updated_at = $1 WHERE kind = $2 AND ref_id IN ({list})"
                ),
                vec![Value::ChronoDateTimeUtc(Some(self.now)), kind.into()],
            )
            .await?;
        }
        Ok(())
    }

    /// Replaces a plain value that must outlive the person (a suppression, an opt-out) by
    /// its keyed hash; a row already holding the hash makes the plain one redundant.
    async fn keep_hashed<C: ConnectionTrait>(
        &self,
        conn: &C,
        table: &str,
        column: &str,
        purpose: Purpose,
        value: &str,
    ) -> Result<(), DbErr> {
        let marked = self.privacy.marked(purpose, value);
        let tenant = self.tenant();
        let existing = db::count(
            conn,
            &format!("SELECT COUNT(*) AS n FROM {table} WHERE tenant_id = $1 AND {column} = $2"),
            vec![tenant.clone(), marked.clone().into()],
        )
        .await?;
        let sql = if existing > 0 {
            format!("DELETE FROM {table} WHERE tenant_id = $1 AND {column} = $3 AND $2 <> $3")
        } else {
            format!("UPDATE {table} SET {column} = $2 WHERE tenant_id = $1 AND {column} = $3")
        };
        db::exec(
            conn,
            &sql,
            vec![tenant.clone(), marked.into(), value.into()],
        )
        .await?;
        if table == "email_suppressions" {
            // The server's answer often quotes the address.
            db::exec(
                conn,
                &format!("UPDATE email_suppressions SET reason = '{MARKER}' WHERE tenant_id = $1 AND email = $2"),
                vec![tenant, self.privacy.marked(purpose, value).into()],
            )
            .await?;
        }
        Ok(())
    }

    /// Redacts the tenant's stored import reports where they quote the contact.
    async fn reports<C: ConnectionTrait>(&self, conn: &C, needles: &Needles) -> Result<(), DbErr> {
        let mut after = 0i64;
        loop {
            let rows = db::rows::query_as::<ReportRow, _>(
                conn,
                &format!(
                    "SELECT id, report FROM sync_runs WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT {REPORT_PAGE}"
                ),
                vec![self.tenant(), Value::BigInt(Some(after))],
            )
            .await?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = last.id;
            for row in &rows {
                if let Some(report) = redact::stored(&row.report, Scope::Matching(needles)) {
                    db::exec(
                        conn,
                        "UPDATE sync_runs SET report = $1 WHERE id = $2",
                        vec![report.into(), Value::BigInt(Some(row.id))],
                    )
                    .await?;
                }
            }
            if (rows.len() as u64) < REPORT_PAGE {
                return Ok(());
            }
        }
    }
}

/// Redacts a request's values whole (it is about the erased person).
async fn redact_request<C: ConnectionTrait>(conn: &C, row: &RequestRow) -> Result<(), DbErr> {
    let redacted = |text: &Option<String>| {
        text.as_ref()
            .map(|t| redact::stored(t, Scope::Everything).unwrap_or_else(|| t.clone()))
    };
    db::exec(
        conn,
        "UPDATE contact_requests SET proposed = $1, current = $2, applied = $3, reason = $4 WHERE id = $5",
        vec![
            redacted(&Some(row.proposed.clone())).into(),
            redacted(&row.current).into(),
            redacted(&row.applied).into(),
            row.reason.as_ref().map(|_| MARKER.to_string()).into(),
            Value::BigInt(Some(row.id)),
        ],
    )
    .await
    .map(|_| ())
}

fn needles(values: &ContactValues) -> Needles {
    let mut needles = Needles::default();
    needles
        .email(values.email.as_deref())
        .email(values.email_sync.as_deref())
        .phone(values.mobile_phone.as_deref())
        .phone(values.mobile_phone_sync.as_deref())
        .words(values.given_name.as_deref())
        .words(values.given_name_sync.as_deref())
        .words(values.family_name.as_deref())
        .words(values.family_name_sync.as_deref())
        .text(values.source_id.as_deref());
    if values.source_key.contains('@') {
        needles.email(Some(&values.source_key));
    } else {
        needles.text(Some(&values.source_key));
    }
    needles
}
