//! SQL is written once, with PostgreSQL's numbered placeholders (`$1`, `$2`, …). SQLite
//! reads `$1` as a *named* parameter numbered by first appearance, so a statement that uses
//! `$2` before `$1`, or `$1` twice, would bind the wrong values: there each placeholder
//! becomes the equivalent numbered `?1`, `?2`, …, or a bare `?` when the statement names
//! `$1` to `$n` in order, each once (bound in order, without a name lookup per
//! parameter). Only placeholders are rewritten: a `$`
//! inside a string literal (`'$.a'`, a JSON path), a quoted identifier or a comment is
//! left as written.

use sea_orm::DbBackend;
use std::borrow::Cow;

/// `sql` as `backend` expects it: unchanged on PostgreSQL (and when there is no `$`),
/// with every `$n` placeholder outside quotes and comments turned into `?n` on SQLite
/// (`?` when they are `$1` to `$n` in order).
pub fn for_engine(backend: DbBackend, sql: &str) -> Cow<'_, str> {
    if backend == DbBackend::Sqlite && sql.contains('$') {
        Cow::Owned(numbered_question_marks(sql))
    } else {
        Cow::Borrowed(sql)
    }
}

/// Where the scanner is in the SQL text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Code,
    /// Inside `'…'` (`''` is an escaped quote, which the scanner sees as leaving and
    /// re-entering the literal: the same result).
    Literal,
    /// Inside `"…"`.
    Identifier,
    /// After `--`, up to the end of the line.
    LineComment,
    /// Inside `/* … */`.
    BlockComment,
}

/// Rewrites the placeholders ([`placeholders`]) for SQLite: to bare `?` when they are
/// `$1, $2, …, $n` in that order, each once (every multi-row insert), and to `?n`
/// otherwise. A numbered parameter makes sqlx look its name up for every bind, and SQLite
/// finds a name by walking a list of them: quadratic in the number of parameters (≈ 4% of
/// the digest dispatcher's CPU with ≈ 2,000 parameters a statement, measured); anonymous
/// ones are bound in order without any lookup.
fn numbered_question_marks(sql: &str) -> String {
    let found = placeholders(sql);
    let in_order = found
        .iter()
        .enumerate()
        .all(|(i, &(_, _, number))| number == i as u64 + 1);
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    for (start, end, _) in found {
        out.push_str(&sql[copied..start]);
        out.push('?');
        if !in_order {
            out.push_str(&sql[start + 1..end]);
        }
        copied = end;
    }
    out.push_str(&sql[copied..]);
    out
}

/// The `$n` placeholders of `sql` — `$` in code (outside quotes and comments), followed by
/// digits — as (start of `$`, end of the digits, n), in text order.
fn placeholders(sql: &str) -> Vec<(usize, usize, u64)> {
    let bytes = sql.as_bytes();
    let mut found = Vec::new();
    let mut context = Context::Code;
    let mut i = 0;
    while i < bytes.len() {
        let next = bytes.get(i + 1).copied();
        context = match (context, bytes[i]) {
            (Context::Code, b'\'') => Context::Literal,
            (Context::Code, b'"') => Context::Identifier,
            (Context::Code, b'-') if next == Some(b'-') => {
                i += 1;
                Context::LineComment
            }
            (Context::Code, b'/') if next == Some(b'*') => {
                i += 1;
                Context::BlockComment
            }
            (Context::Code, b'$') if next.is_some_and(|b| b.is_ascii_digit()) => {
                let digits = bytes[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                // Only ASCII bytes are cut, so both ends fall on character boundaries.
                let number = sql[i + 1..i + 1 + digits].parse().unwrap_or(u64::MAX);
                found.push((i, i + 1 + digits, number));
                i += digits;
                Context::Code
            }
            (Context::Literal, b'\'') | (Context::Identifier, b'"') => Context::Code,
            (Context::LineComment, b'\n') => Context::Code,
            (Context::BlockComment, b'*') if next == Some(b'/') => {
                i += 1;
                Context::Code
            }
            (context, _) => context,
        };
        i += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(sql: &str) -> String {
        for_engine(DbBackend::Sqlite, sql).into_owned()
    }

    #[test]
    fn placeholders_become_numbered_question_marks_on_sqlite() {
        assert_eq!(
            sqlite("SELECT a FROM t WHERE b = $1 AND c IN ($2, $10) AND d = $1"),
            "SELECT a FROM t WHERE b = ?1 AND c IN (?2, ?10) AND d = ?1"
        );
        assert_eq!(sqlite("x=$3"), "x=?3");
        assert_eq!(sqlite("x=$2 AND y=$1"), "x=?2 AND y=?1");
        assert_eq!(sqlite("x=$1 AND y=$3"), "x=?1 AND y=?3");
    }

    #[test]
    fn placeholders_in_order_each_once_become_bare_question_marks() {
        assert_eq!(sqlite("$1"), "?");
        assert_eq!(
            sqlite(
                "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6), ($7, $8), ($9, $10), ($11, $12)"
            ),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?), (?, ?), (?, ?), (?, ?)"
        );
        assert_eq!(
            sqlite("SELECT '$2' || $1 /* $3 */ FROM t WHERE b = $2"),
            "SELECT '$2' || ? /* $3 */ FROM t WHERE b = ?"
        );
    }

    #[test]
    fn postgresql_gets_the_sql_as_written() {
        let sql = "SELECT $1, '$2'";
        assert!(matches!(
            for_engine(DbBackend::Postgres, sql),
            Cow::Borrowed(s) if s == sql
        ));
    }

    #[test]
    fn a_dollar_inside_quotes_or_comments_is_kept() {
        assert_eq!(
            sqlite("SELECT json_extract(x, '$.a'), '$1', 'it''s $2' FROM t WHERE y = $2"),
            "SELECT json_extract(x, '$.a'), '$1', 'it''s $2' FROM t WHERE y = ?2"
        );
        assert_eq!(
            sqlite(r#"SELECT "col$1" FROM t WHERE a = $2"#),
            r#"SELECT "col$1" FROM t WHERE a = ?2"#
        );
        assert_eq!(
            sqlite("SELECT 1 -- costs $1\nWHERE a = $1 /* $2 */ AND b = $1"),
            "SELECT 1 -- costs $1\nWHERE a = ?1 /* $2 */ AND b = ?1"
        );
    }

    #[test]
    fn a_dollar_that_starts_no_placeholder_is_kept() {
        assert_eq!(sqlite("SELECT $a, $ 1, $"), "SELECT $a, $ 1, $");
        assert_eq!(
            sqlite("SELECT 'Zoë' || $2 || 'é$'"),
            "SELECT 'Zoë' || ?2 || 'é$'"
        );
    }

    #[test]
    fn sql_without_a_dollar_is_not_copied() {
        assert!(matches!(
            for_engine(DbBackend::Sqlite, "SELECT 1"),
            Cow::Borrowed(_)
        ));
    }
}
