//! Addresses a mail server refused for good (`email_suppressions`), checked right before
//! each email is sent. A suppression is stored as the lowercased address, or — once the
//! person it named was erased — only as its keyed hash ([`Purpose::EmailSuppression`],
//! `hmac:` and the hash), so the check matches both forms: an erased person who comes back
//! under the same address still gets nothing the server refused. The digest's and the
//! invitations' earlier checks (in SQL, on plain addresses) spare the work of queueing; this
//! one is what holds for every kind of email, including a message queued before its
//! address was suppressed.

use super::Channel;
use super::store::Claimed;
use crate::db;
use crate::privacy::{PrivacyKey, Purpose};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};
use std::collections::{HashMap, HashSet};

/// The two forms a suppression of `email` may be stored in: the lowercased address, and
/// its marked keyed hash (what erasure keeps).
pub fn stored_forms(key: &PrivacyKey, email: &str) -> [String; 2] {
    let plain = normalised(email);
    let hashed = key.marked(Purpose::EmailSuppression, &plain);
    [plain, hashed]
}

/// The form an address is compared in: trimmed and lowercased.
pub fn normalised(email: &str) -> String {
    email.trim().to_lowercase()
}

#[derive(FromQueryResult)]
struct Found {
    email: String,
}

/// The outbox ids among `rows` whose email recipient is suppressed in the row's tenant:
/// one query per tenant of the batch, on the `(tenant_id, email)` index (SMS rows are
/// never suppressed here: their opt-outs are in [`super::consent`]).
pub async fn suppressed_among<C: ConnectionTrait>(
    conn: &C,
    key: &PrivacyKey,
    rows: &[Claimed],
) -> Result<HashSet<i64>, DbErr> {
    // Tenant → stored form → the rows whose recipient has it.
    let mut by_tenant: HashMap<i64, HashMap<String, Vec<i64>>> = HashMap::new();
    for row in rows.iter().filter(|r| r.channel == Channel::Email) {
        let forms = by_tenant.entry(row.tenant_id.0).or_default();
        for form in stored_forms(key, &row.recipient) {
            forms.entry(form).or_default().push(row.id);
        }
    }
    let mut suppressed = HashSet::new();
    for (tenant, forms) in by_tenant {
        let mut values = vec![Value::BigInt(Some(tenant))];
        values.extend(forms.keys().map(|f| Value::from(f.as_str())));
        let placeholders = (2..=values.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let found = db::rows::query_as::<Found, _>(
            conn,
            &format!(
                "SELECT email FROM email_suppressions WHERE tenant_id = $1 AND email IN ({placeholders})"
            ),
            values,
        )
        .await?;
        for hit in found {
            suppressed.extend(forms.get(&hit.email).into_iter().flatten().copied());
        }
    }
    Ok(suppressed)
}
