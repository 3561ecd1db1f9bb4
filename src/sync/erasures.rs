//! Erasures seen from the sync: an admin erased a contact from a student (SPEC §3.3), so a
//! snapshot that still carries that pair does not bring it back. The staged rows of erased
//! pairs are dropped before the reconcile, and so is the staged contact when nothing else
//! links it and its row is gone from the live table. An admin lifting the erasure lets the
//! next sync re-create the pair. The erase itself is in [`crate::approvals::erase`].

use crate::db::ImportConn;
use crate::domain::TenantId;
use sea_orm::{DbErr, Value};

/// Unlifted erasures of the tenant, aliased `e`, matching a staged link `l`.
const ERASED_LINK: &str = "SELECT 1 FROM contact_erasures e WHERE e.tenant_id = $1 AND e.lifted_at IS NULL \
     AND e.student_source_id = s_links.student_id AND e.contact_source_key = s_links.contact_key";

/// Drops staged links (and contacts only they named) of erased student–contact pairs;
/// returns how many staged links were dropped.
pub async fn skip_erased(conn: &mut ImportConn, tenant: TenantId) -> Result<u64, DbErr> {
    let tenant = Value::BigInt(Some(tenant.0));
    let erasures = conn
        .count(
            "SELECT COUNT(*) AS n FROM contact_erasures WHERE tenant_id = $1 AND lifted_at IS NULL",
            vec![tenant.clone()],
        )
        .await?;
    if erasures == 0 {
        return Ok(0);
    }
    let skipped = conn
        .exec(
            &format!("DELETE FROM s_links WHERE EXISTS ({ERASED_LINK})"),
            vec![tenant.clone()],
        )
        .await?;
    conn.exec(
        "DELETE FROM s_contacts WHERE EXISTS (SELECT 1 FROM contact_erasures e WHERE e.tenant_id = $1 \
           AND e.lifted_at IS NULL AND e.contact_source_key = s_contacts.source_key) \
         AND NOT EXISTS (SELECT 1 FROM s_links l WHERE l.contact_key = s_contacts.source_key) \
         AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.tenant_id = $1 AND c.source_key = s_contacts.source_key)",
        vec![tenant],
    )
    .await?;
    Ok(skipped)
}
