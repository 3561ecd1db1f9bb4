//! The recorded import runs of a tenant (`sync_runs`): a keyset page, newest first, and one
//! run — what `GET /api/v1/imports[/{id}]` and the imports page read.

use crate::domain::TenantId;
use crate::entities::sync_run;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

/// A page of runs, newest first: the runs, and whether more follow.
pub async fn page<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    before: Option<i64>,
    limit: u64,
) -> Result<(Vec<sync_run::Model>, bool), DbErr> {
    let mut query = sync_run::Entity::find()
        .filter(sync_run::Column::TenantId.eq(tenant.0))
        .order_by_desc(sync_run::Column::Id)
        .limit(limit.saturating_add(1));
    if let Some(before) = before {
        query = query.filter(sync_run::Column::Id.lt(before));
    }
    let mut rows = query.all(conn).await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

/// The tenant's run `id`, if there is one.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    id: i64,
) -> Result<Option<sync_run::Model>, DbErr> {
    sync_run::Entity::find_by_id(id)
        .filter(sync_run::Column::TenantId.eq(tenant.0))
        .one(conn)
        .await
}
