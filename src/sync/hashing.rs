//! The 64-bit hashes that let a re-sync skip unchanged rows: `sync_key` identifies a row by
//! its natural key, `sync_hash` fingerprints the values a sync delivered for it. Both are
//! xxh3 over a length-prefixed encoding of the values, so they are stable across builds and
//! Rust versions (they are stored) and `["ab", "c"]` never collides with `["a", "bc"]`.

use super::staging::StageTable;
use xxhash_rust::xxh3::Xxh3Default;

/// The `sync_key` of a synced row: the hash of its natural key. Every key a sync or an
/// approved edit stores, and every key the diffed path looks a live row up by, is built
/// here, so a row made by one is found by the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncKey(i64);

impl SyncKey {
    /// A student, staff member or SDS v2.1 user: by `source_id`.
    pub fn person(source_id: &str) -> Self {
        Self(hash_strs(&[source_id]))
    }

    /// A contact: by `source_key` (SDS v1: the email; SDS v2.1 and OneRoster: the user's
    /// `sourcedId`; an approved edit: the email or `edit:<request id>`).
    pub fn contact(source_key: &str) -> Self {
        Self(hash_strs(&[source_key]))
    }

    /// A student–contact link: the student's `source_id` and the contact's `source_key`.
    pub fn link(student_source_id: &str, contact_source_key: &str) -> Self {
        Self(hash_strs(&[student_source_id, contact_source_key]))
    }

    /// A class enrollment: the class's and the person's `source_id`, and the role
    /// (`student` | `teacher`).
    pub fn enrollment(class_source_id: &str, person_source_id: &str, role: &str) -> Self {
        Self(hash_strs(&[class_source_id, person_source_id, role]))
    }

    /// The key of a row staged into `table` (`values` in [`StageTable::columns`] order: the
    /// first [`StageTable::key_len`] of them are the key); `None` for tables without keys.
    pub fn staged(table: StageTable, values: &[Option<String>]) -> Option<Self> {
        let n = table.key_len()?;
        Some(Self(hash_values(values[..n].iter().map(|v| v.as_deref()))))
    }

    /// The stored value.
    pub fn get(self) -> i64 {
        self.0
    }

    /// The same bits unsigned, for in-memory sets of keys.
    pub fn bits(self) -> u64 {
        self.0 as u64
    }
}

impl From<SyncKey> for sea_orm::Value {
    fn from(key: SyncKey) -> Self {
        sea_orm::Value::BigInt(Some(key.0))
    }
}

/// Hash of a list of optional values (`None` and `""` are distinct).
pub fn hash_values<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> i64 {
    // Called for every row of every file: the streaming hasher buffers the encoding on the
    // stack (its digest equals the one-shot hash of the same bytes), so no heap buffer.
    let mut hasher = Xxh3Default::new();
    for value in values {
        match value {
            None => hasher.update(&[0]),
            Some(text) => {
                hasher.update(&[1]);
                hasher.update(&(text.len() as u32).to_le_bytes());
                hasher.update(text.as_bytes());
            }
        }
    }
    hasher.digest() as i64
}

/// Hash of a list of present values.
pub fn hash_strs(values: &[&str]) -> i64 {
    hash_values(values.iter().map(|v| Some(*v)))
}

/// Hash of `values` and, only when it is not blank, `optional`: a column read after rows
/// were first hashed, so rows without it keep the hash they had before.
pub fn hash_strs_then_optional(values: &[&str], optional: &str) -> i64 {
    let given = (!optional.is_empty()).then_some(optional);
    hash_values(values.iter().copied().chain(given).map(Some))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_optional_value_leaves_the_hash_as_it_was() {
        assert_eq!(
            hash_strs_then_optional(&["a", "b"], ""),
            hash_strs(&["a", "b"])
        );
        assert_eq!(
            hash_strs_then_optional(&["a", "b"], "es"),
            hash_strs(&["a", "b", "es"])
        );
    }

    #[test]
    fn boundaries_and_blanks_change_the_hash() {
        assert_ne!(hash_strs(&["ab", "c"]), hash_strs(&["a", "bc"]));
        assert_ne!(hash_values([None]), hash_values([Some("")]));
        assert_eq!(hash_strs(&["x", "y"]), hash_values([Some("x"), Some("y")]));
    }

    #[test]
    fn typed_keys_equal_the_keys_of_staged_rows() {
        let text = |values: &[&str]| -> Vec<Option<String>> {
            values.iter().map(|v| Some(v.to_string())).collect()
        };
        let staged = |table, values: &[&str]| SyncKey::staged(table, &text(values));
        assert_eq!(
            staged(StageTable::Students, &["s-1", "Ann", "Lee"]),
            Some(SyncKey::person("s-1"))
        );
        assert_eq!(
            staged(
                StageTable::Contacts,
                &["a@x.org", "c-1", "", "", "", "", "", "", "", ""]
            ),
            Some(SyncKey::contact("a@x.org"))
        );
        assert_eq!(
            staged(StageTable::Links, &["s-1", "a@x.org", "mother"]),
            Some(SyncKey::link("s-1", "a@x.org"))
        );
        assert_eq!(
            staged(StageTable::Enrollments, &["k-1", "s-1", "student"]),
            Some(SyncKey::enrollment("k-1", "s-1", "student"))
        );
        assert_eq!(staged(StageTable::Schools, &["o-1", "North"]), None);
        // The stored values themselves are pinned below: a key is the hash of its columns.
        assert_eq!(SyncKey::person("s-1").get(), -6_528_809_281_757_864_944);
    }

    #[test]
    fn the_stored_value_is_stable() {
        // Stored in the database: these must never change between releases. The expected
        // values were computed outside this code, with the `xxhash` package for Python
        // (xxh3_64 of the same length-prefixed encoding, read as a signed 64-bit integer).
        let known: [(Vec<Option<&str>>, i64); 6] = [
            (vec![], 3_244_421_341_483_603_138),
            (vec![Some("s-1")], -6_528_809_281_757_864_944),
            (vec![None], -4_302_098_779_834_749_733),
            (vec![Some("")], -3_324_339_876_489_726_104),
            (
                vec![Some("tenant-1"), Some("stu-0000001")],
                7_246_474_978_801_354_935,
            ),
            (
                vec![Some("Zoë"), None, Some("+12025550199")],
                -533_080_656_220_759_073,
            ),
        ];
        for (values, expected) in known {
            assert_eq!(hash_values(values.clone()), expected, "{values:?}");
        }
    }

    #[test]
    fn long_values_hash_as_their_encoding() {
        // Longer than the streaming hasher's buffer: the hash is the same function of the
        // same bytes.
        let long = "x".repeat(1536);
        let values = [Some("a"), None, Some(long.as_str()), Some("b")];
        let mut encoding = Vec::new();
        for value in values {
            match value {
                None => encoding.push(0),
                Some(text) => {
                    encoding.push(1);
                    encoding.extend_from_slice(&(text.len() as u32).to_le_bytes());
                    encoding.extend_from_slice(text.as_bytes());
                }
            }
        }
        assert_eq!(
            hash_values(values),
            xxhash_rust::xxh3::xxh3_64(&encoding) as i64
        );
        assert_ne!(hash_values([Some(long.as_str())]), hash_values([Some("x")]));
    }
}
