//! Every table of the migrated schema has a sea-orm entity whose columns are exactly the
//! table's columns, on both engines; and the rows an import and the default settings write
//! read back through the entities (every stored enum value is in its Rust enum).

use crate::db_tests;
use crate::support::{APPLY, Backend, Fixture, TestDb};
use parent_connection::entities::*;
use parent_connection::sync::Format;
use sea_orm::{EntityName, EntityTrait, IdenStatic, Iterable, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Calls `$callback!(…, every entity module)`: the one list of the entities these tests walk.
macro_rules! every_entity {
    ($callback:ident ! ($($args:tt)*)) => {
        $callback!(
            $($args)*
            assignments, audit_log, chat_banners, chat_blocks, chat_members, chats,
            class_digest_settings, classes, contact_erasures, contact_requests, contacts,
            digest_deliveries, digest_runs, digest_unsubscribes, disclosure_students, disclosures,
            email_suppressions,
            enrollments, invitations, link_restrictions, oidc_attempts, oneroster_connections, outbox, schools,
            sms_opt_outs, staff, student_contacts, students, sync_run, tenant, tenant_settings,
            web_sessions, sign_in_codes, scheduled_runs,
        )
    };
}

/// Each entity's table name and column names.
macro_rules! entity_columns {
    ($($module:ident),* $(,)?) => {
        vec![$((
            $module::Entity.table_name().to_string(),
            $module::Column::iter().map(|c| c.as_str().to_string()).collect::<BTreeSet<_>>(),
        )),*]
    };
}

fn entities() -> BTreeMap<String, BTreeSet<String>> {
    let all = every_entity!(entity_columns!());
    let count = all.len();
    let map: BTreeMap<_, _> = all.into_iter().collect();
    assert_eq!(map.len(), count, "two entities name the same table");
    map
}

async fn texts(db: &TestDb, sql: &str, values: Vec<Value>) -> BTreeSet<String> {
    db.texts(sql, values).await.into_iter().collect()
}

/// The migrated schema's tables (without the migrator's own).
async fn tables(db: &TestDb) -> BTreeSet<String> {
    let sql = match db.backend {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        Backend::Postgres => {
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        }
    };
    let mut tables = texts(db, sql, vec![]).await;
    tables.remove("seaql_migrations");
    tables
}

async fn columns(db: &TestDb, table: &str) -> BTreeSet<String> {
    let sql = match db.backend {
        Backend::Sqlite => "SELECT name FROM pragma_table_info($1)",
        Backend::Postgres => {
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1"
        }
    };
    texts(db, sql, vec![table.into()]).await
}

async fn every_table_has_an_entity_with_its_columns(backend: Backend) {
    let db = TestDb::new(backend).await;
    let entities = entities();
    let tables = tables(&db).await;
    let names: BTreeSet<String> = entities.keys().cloned().collect();
    assert_eq!(
        names, tables,
        "entities (left) and migrated tables (right) differ"
    );
    let mut differences = Vec::new();
    for (table, entity_columns) in &entities {
        let table_columns = columns(&db, table).await;
        if *entity_columns != table_columns {
            differences.push(format!(
                "{table}: only in the entity {:?}, only in the table {:?}",
                entity_columns
                    .difference(&table_columns)
                    .collect::<Vec<_>>(),
                table_columns.difference(entity_columns).collect::<Vec<_>>()
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Reads every row of each entity's table, failing on the first that does not bind.
macro_rules! read_all {
    ($conn:expr, $($module:ident),* $(,)?) => {{
        let mut read = BTreeMap::new();
        $(
            let rows = $module::Entity::find().all($conn).await.unwrap_or_else(|e| {
                panic!("{} rows do not read back: {e}", $module::Entity.table_name())
            });
            read.insert($module::Entity.table_name(), rows.len());
        )*
        read
    }};
}

async fn imported_rows_read_back_through_the_entities(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    db.import("demo", Format::SdsV21, Fixture::v21().path(), APPLY)
        .await;
    let read = every_entity!(read_all!(&db.conn,));
    for table in ["tenants", "tenant_settings", "contacts", "student_contacts"] {
        assert!(read[table] > 0, "{table} is empty: {read:?}");
    }
}

db_tests!(
    every_table_has_an_entity_with_its_columns,
    imported_rows_read_back_through_the_entities
);
