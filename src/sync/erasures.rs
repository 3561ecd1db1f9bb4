//! Erasures seen from the sync: an admin erased a contact from a student (SPEC §3.3), so a
//! snapshot that still carries that pair does not bring it back. An erasure keeps the
//! contact's SIS key only as a keyed hash ([`crate::privacy::Purpose::ErasureKey`]), so the
//! staged keys are hashed here under the same key and compared: the staged links of erased
//! pairs are dropped before the reconcile, and so is a staged contact that nothing else
//! links and whose row is gone from the live table. An admin lifting the erasure lets the
//! next sync re-create the pair. The erase itself is in [`crate::approvals::erase`].

use crate::db::ImportConn;
use crate::domain::TenantId;
use crate::privacy::{PrivacyKey, Purpose};
use sea_orm::{DbErr, Value};
use std::collections::HashSet;

/// Drops staged links (and contacts only they named) of erased student–contact pairs;
/// returns how many staged links were dropped. Reads the tenant's unlifted erasures, the
/// staged links of their students and the staged contacts that no staged link and no live
/// row name: the only keys that need hashing.
pub async fn skip_erased(
    conn: &mut ImportConn,
    tenant: TenantId,
    privacy: &PrivacyKey,
) -> Result<u64, DbErr> {
    hash_legacy_keys(conn, tenant, privacy).await?;
    let tenant = Value::BigInt(Some(tenant.0));
    let erased = conn
        .query(
            "SELECT student_source_id, contact_source_key FROM contact_erasures WHERE tenant_id = $1 AND lifted_at IS NULL",
            vec![tenant.clone()],
        )
        .await?;
    if erased.is_empty() {
        return Ok(0);
    }
    let mut pairs = HashSet::new();
    let mut keys = HashSet::new();
    for row in &erased {
        let student: String = row.get("student_source_id")?;
        let key: String = row.get("contact_source_key")?;
        keys.insert(key.clone());
        pairs.insert((student, key));
    }
    let staged = conn
        .query(
            "SELECT DISTINCT student_id, contact_key FROM s_links WHERE student_id IN \
               (SELECT student_source_id FROM contact_erasures WHERE tenant_id = $1 AND lifted_at IS NULL)",
            vec![tenant.clone()],
        )
        .await?;
    let mut skipped = 0;
    for row in &staged {
        let student: String = row.get("student_id")?;
        let key: String = row.get("contact_key")?;
        if pairs.contains(&(student.clone(), privacy.hash(Purpose::ErasureKey, &key))) {
            skipped += conn
                .exec(
                    "DELETE FROM s_links WHERE student_id = $1 AND contact_key = $2",
                    vec![student.into(), key.into()],
                )
                .await?;
        }
    }
    let orphans = conn
        .query(
            "SELECT source_key FROM s_contacts WHERE NOT EXISTS (SELECT 1 FROM s_links l WHERE l.contact_key = s_contacts.source_key) \
             AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.tenant_id = $1 AND c.source_key = s_contacts.source_key)",
            vec![tenant],
        )
        .await?;
    for row in &orphans {
        let key: String = row.get("source_key")?;
        if keys.contains(&privacy.hash(Purpose::ErasureKey, &key)) {
            conn.exec(
                "DELETE FROM s_contacts WHERE source_key = $1",
                vec![key.into()],
            )
            .await?;
        }
    }
    Ok(skipped)
}

/// Hashes the plain keys of erasures recorded before keys were hashed (migration 19).
async fn hash_legacy_keys(
    conn: &mut ImportConn,
    tenant: TenantId,
    privacy: &PrivacyKey,
) -> Result<(), DbErr> {
    let legacy = conn
        .query(
            "SELECT id, contact_source_key FROM contact_erasures WHERE tenant_id = $1 AND key_hashed = $2",
            vec![Value::BigInt(Some(tenant.0)), Value::Bool(Some(false))],
        )
        .await?;
    for row in &legacy {
        let id: i64 = row.get("id")?;
        let key: String = row.get("contact_source_key")?;
        conn.exec(
            "UPDATE contact_erasures SET contact_source_key = $1, key_hashed = $2 WHERE id = $3",
            vec![
                privacy.hash(Purpose::ErasureKey, &key).into(),
                Value::Bool(Some(true)),
                Value::BigInt(Some(id)),
            ],
        )
        .await?;
    }
    Ok(())
}
