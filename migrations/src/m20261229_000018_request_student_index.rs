//! The index of a student's contact requests: the admin student page (`/admin/students/{id}`)
//! and `GET /api/v1/contact-requests?studentId=` read one student's requests in id order,
//! which the (tenant, id) index could only serve by walking the tenant's requests.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `ix_contact_requests_tenant_id_student_source_id_id`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261229_000018_request_student_index"
    }
}

const TABLE: &str = "contact_requests";
const COLUMNS: &[&str] = &["tenant_id", "student_source_id", "id"];

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_index(index(TABLE, COLUMNS, false)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(format!("ix_{TABLE}_{}", COLUMNS.join("_")))
                    .table(TABLE)
                    .to_owned(),
            )
            .await
    }
}
