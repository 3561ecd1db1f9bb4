//! The tenant ids behind token slugs, kept in memory: every API request names its tenant by
//! slug, and a tenant's id and slug never change once created (tenants are neither renamed
//! nor deleted), so each slug is read from the database once per process. Unknown slugs are
//! not remembered: a tenant created later is found on its first request.

use crate::db;
use crate::domain::TenantId;
use sea_orm::{ConnectionTrait, DbErr, Value};
use std::collections::HashMap;
use std::sync::RwLock;

/// Slug → tenant id, filled on first use.
#[derive(Debug, Default)]
pub struct Directory {
    known: RwLock<HashMap<String, TenantId>>,
}

impl Directory {
    /// The id of the tenant with `slug`; `None` when there is none.
    pub async fn id<C: ConnectionTrait>(
        &self,
        conn: &C,
        slug: &str,
    ) -> Result<Option<TenantId>, DbErr> {
        if let Some(id) = self.cached(slug) {
            return Ok(Some(id));
        }
        let rows = db::query(
            conn,
            "SELECT id FROM tenants WHERE slug = $1",
            vec![Value::String(Some(slug.to_string()))],
        )
        .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let id = TenantId(row.try_get("", "id")?);
        if let Ok(mut known) = self.known.write() {
            known.insert(slug.to_string(), id);
        }
        Ok(Some(id))
    }

    fn cached(&self, slug: &str) -> Option<TenantId> {
        self.known.read().ok()?.get(slug).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_a_slug_once_and_never_remembers_an_unknown_one() {
        let conn = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        db::exec(
            &conn,
            "CREATE TABLE tenants (id INTEGER PRIMARY KEY, slug TEXT NOT NULL)",
            vec![],
        )
        .await
        .unwrap();
        let directory = Directory::default();
        assert_eq!(directory.id(&conn, "nyc").await.unwrap(), None);
        db::exec(
            &conn,
            "INSERT INTO tenants (id, slug) VALUES (7, 'nyc')",
            vec![],
        )
        .await
        .unwrap();
        assert_eq!(directory.id(&conn, "nyc").await.unwrap(), Some(TenantId(7)));
        db::exec(&conn, "DROP TABLE tenants", vec![]).await.unwrap();
        assert_eq!(
            directory.id(&conn, "nyc").await.unwrap(),
            Some(TenantId(7)),
            "answered from memory"
        );
        assert!(
            directory.id(&conn, "bos").await.is_err(),
            "unknown: asked again"
        );
    }
}
