//! SQL is written once, with PostgreSQL's numbered placeholders (`$1`, `$2`, …). SQLite
//! reads `$1` as a *named* parameter numbered by first appearance, so a statement that uses
//! `$2` before `$1`, or `$1` twice, would bind the wrong values: there each placeholder
//! becomes the equivalent numbered `?1`, `?2`, … Only placeholders are rewritten: a `$`
//! inside a string literal (`'$.a'`, a JSON path), a quoted identifier or a comment is
//! left as written.

use sea_orm::DbBackend;
use std::borrow::Cow;

/// `sql` as `backend` expects it: unchanged on PostgreSQL (and when there is no `$`),
/// with every `$n` placeholder outside quotes and comments turned into `?n` on SQLite.
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

/// Rewrites `$n` to `?n` where `$` starts a placeholder: in code, followed by a digit.
fn numbered_question_marks(sql: &str) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut context = Context::Code;
    // Start of the text not yet copied; only ASCII bytes are ever replaced, so every
    // cut below falls on a character boundary.
    let mut copied = 0;
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
                out.push_str(&sql[copied..i]);
                out.push('?');
                copied = i + 1;
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
    out.push_str(&sql[copied..]);
    out
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
        assert_eq!(sqlite("$1"), "?1");
        assert_eq!(sqlite("x=$3"), "x=?3");
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
            sqlite("SELECT json_extract(x, '$.a'), '$1', 'it''s $2' FROM t WHERE y = $1"),
            "SELECT json_extract(x, '$.a'), '$1', 'it''s $2' FROM t WHERE y = ?1"
        );
        assert_eq!(
            sqlite(r#"SELECT "col$1" FROM t WHERE a = $2"#),
            r#"SELECT "col$1" FROM t WHERE a = ?2"#
        );
        assert_eq!(
            sqlite("SELECT 1 -- costs $1\nWHERE a = $1 /* $2 */ AND b = $2"),
            "SELECT 1 -- costs $1\nWHERE a = ?1 /* $2 */ AND b = ?2"
        );
    }

    #[test]
    fn a_dollar_that_starts_no_placeholder_is_kept() {
        assert_eq!(sqlite("SELECT $a, $ 1, $"), "SELECT $a, $ 1, $");
        assert_eq!(
            sqlite("SELECT 'Zoë' || $1 || 'é$'"),
            "SELECT 'Zoë' || ?1 || 'é$'"
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
