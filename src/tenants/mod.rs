//! Tenants (school districts) and their settings.

pub(crate) mod directory;
pub mod settings;

pub use directory::Directory;

use crate::audit::{self, AuditEntry};
use crate::db;
use crate::domain::{Region, TenantId, TenantSlug};
use crate::entities::{tenant, tenant_settings};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set,
};
use settings::TenantSettings;

/// Errors of tenant operations.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// No tenant has this slug.
    #[error("no tenant named '{0}' (create it with `parent-connection tenant create {0}`)")]
    NotFound(String),
    /// The slug is taken.
    #[error("a tenant named '{0}' already exists")]
    AlreadyExists(String),
    /// Database failure.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// A tenant with the settings the sync needs.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Id.
    pub id: TenantId,
    /// Slug.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Default phone region.
    pub region: Region,
    /// Settings.
    pub settings: TenantSettings,
}

/// Creates a tenant with default settings, audited.
pub async fn create(
    db: &DatabaseConnection,
    slug: &TenantSlug,
    name: &str,
    region: Region,
    deletion_guard_percent: i32,
    actor: &str,
) -> Result<Tenant, TenantError> {
    let txn = db::begin_write(db).await?;
    if tenant::Entity::find()
        .filter(tenant::Column::Slug.eq(slug.as_str()))
        .one(&txn)
        .await?
        .is_some()
    {
        return Err(TenantError::AlreadyExists(slug.to_string()));
    }
    let now = chrono::Utc::now();
    let row = tenant::ActiveModel {
        slug: Set(slug.to_string()),
        name: Set(name.to_string()),
        region: Set(region.code()),
        created_at: Set(now),
        link_secret: Set(Some(crate::links::new_secret())),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let settings = tenant_settings::ActiveModel {
        tenant_id: Set(row.id),
        preferred_invite_channel: Set("email".into()),
        update_parent_information: Set(true),
        digest_enabled: Set(false),
        deletion_guard_percent: Set(deletion_guard_percent),
        auto_remove_inactive_guardians: Set(false),
        invite_limit_per_guardian: Set(3),
        invite_window_days: Set(7),
        invite_limit_per_tenant_per_day: Set(10_000),
        digest_day: Set(crate::domain::DigestDay::DEFAULT.as_str().into()),
        digest_hour: Set(crate::domain::DEFAULT_DIGEST_HOUR),
        digest_time_zone: Set(crate::domain::DEFAULT_DIGEST_TIME_ZONE.into()),
        invitation_validity_days: Set(crate::domain::DEFAULT_VALIDITY_DAYS),
        updated_at: Set(now),
        quiet_hours_start: Set(None),
        quiet_hours_end: Set(None),
        default_language: Set(crate::i18n::Locale::ENGLISH.tag().into()),
    }
    .insert(&txn)
    .await?
    .try_into()?;
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(TenantId(row.id)),
            actor,
            action: "tenant.create",
            target: Some(format!("tenant:{}", row.slug)),
            before: None,
            after: Some(
                serde_json::json!({"slug": row.slug, "name": row.name, "region": row.region}),
            ),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(Tenant {
        id: TenantId(row.id),
        slug: row.slug,
        name: row.name,
        region,
        settings,
    })
}

/// Finds a tenant by slug.
pub async fn find<C: ConnectionTrait>(conn: &C, slug: &str) -> Result<Tenant, TenantError> {
    let row = db::rows::one(
        conn,
        &tenant::Entity::find().filter(tenant::Column::Slug.eq(slug)),
    )
    .await?
    .ok_or_else(|| TenantError::NotFound(slug.to_string()))?;
    with_settings(conn, row).await
}

/// The slugs of every tenant, oldest first (one row per district: a short list).
pub async fn slugs<C: ConnectionTrait>(conn: &C) -> Result<Vec<String>, DbErr> {
    let rows: Vec<tenant::Model> = db::rows::all(
        conn,
        &tenant::Entity::find().order_by_asc(tenant::Column::Id),
    )
    .await?;
    Ok(rows.into_iter().map(|t| t.slug).collect())
}

/// Every tenant with its settings, oldest first, in two statements (a district per row: a
/// short list); a tenant whose settings row is missing or unreadable comes as its error.
pub async fn all<C: ConnectionTrait>(conn: &C) -> Result<Vec<Result<Tenant, TenantError>>, DbErr> {
    let rows: Vec<tenant::Model> = db::rows::all(
        conn,
        &tenant::Entity::find().order_by_asc(tenant::Column::Id),
    )
    .await?;
    let mut settings: std::collections::HashMap<i64, crate::entities::tenant_settings::Model> =
        db::rows::all(conn, &crate::entities::tenant_settings::Entity::find())
            .await?
            .into_iter()
            .map(|s: crate::entities::tenant_settings::Model| (s.tenant_id, s))
            .collect();
    Ok(rows
        .into_iter()
        .map(|row| {
            let found = settings
                .remove(&row.id)
                .ok_or_else(|| TenantError::NotFound(row.slug.clone()))?;
            let settings = settings::TenantSettings::try_from(found)?;
            Ok(Tenant {
                id: TenantId(row.id),
                slug: row.slug,
                name: row.name,
                region: Region::parse(&row.region).unwrap_or_default(),
                settings,
            })
        })
        .collect())
}

/// Finds a tenant by id.
pub async fn find_by_id<C: ConnectionTrait>(conn: &C, id: TenantId) -> Result<Tenant, TenantError> {
    let row = db::rows::one(conn, &tenant::Entity::find_by_id(id.0))
        .await?
        .ok_or_else(|| TenantError::NotFound(format!("#{}", id.0)))?;
    with_settings(conn, row).await
}

async fn with_settings<C: ConnectionTrait>(
    conn: &C,
    row: tenant::Model,
) -> Result<Tenant, TenantError> {
    let settings = settings::load(conn, TenantId(row.id))
        .await?
        .ok_or_else(|| TenantError::NotFound(row.slug.clone()))?;
    Ok(Tenant {
        id: TenantId(row.id),
        slug: row.slug,
        name: row.name,
        region: Region::parse(&row.region).unwrap_or_default(),
        settings,
    })
}
