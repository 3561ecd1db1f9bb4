//! `oidc_attempts`: the table's shape (kept by hand like the others: see
//! docs/architecture.md "Adding a table").

use sea_orm::entity::prelude::*;

/// One pending staff sign-in with the OpenID Connect provider.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oidc_attempts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(column_type = "Text", unique)]
    pub state: String,
    #[sea_orm(column_type = "Text")]
    pub pkce_verifier: String,
    #[sea_orm(column_type = "Text")]
    pub nonce: String,
    #[sea_orm(column_type = "Text")]
    pub next: String,
    pub created_at: DateTimeUtc,
}

/// No foreign keys.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
