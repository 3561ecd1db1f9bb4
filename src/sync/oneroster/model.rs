//! The JSON shapes of the OneRoster 1.1 subset the sync reads: `orgs`, `users`, `classes`
//! and `enrollments`. Parsing is lenient where providers differ (missing optional fields,
//! `enabledUser` as a string, a boolean or 0/1) and strict where the data would be wrong
//! (a record without `sourcedId` is a row error).

use serde::Deserialize;

/// A reference to another record (`{"sourcedId": "…", "type": "…"}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuidRef {
    /// The referenced record's id.
    pub sourced_id: String,
}

/// What every record carries.
pub trait Record {
    /// The record's `sourcedId`.
    fn sourced_id(&self) -> &str;
    /// `status` (`active` or `tobedeleted`), lower-cased.
    fn status(&self) -> Option<&str>;
    /// `dateLastModified` as the provider wrote it.
    fn date_last_modified(&self) -> Option<&str>;
    /// True when the record counts as gone: `status: tobedeleted`.
    fn is_deleted(&self) -> bool {
        self.status()
            .is_some_and(|s| s.eq_ignore_ascii_case("tobedeleted"))
    }
}

macro_rules! record {
    ($type:ty) => {
        impl Record for $type {
            fn sourced_id(&self) -> &str {
                &self.sourced_id
            }
            fn status(&self) -> Option<&str> {
                self.status.as_deref()
            }
            fn date_last_modified(&self) -> Option<&str> {
                self.date_last_modified.as_deref()
            }
        }
    };
}

/// An org (school, district, …).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Org {
    /// Id.
    pub sourced_id: String,
    /// `active` | `tobedeleted`.
    pub status: Option<String>,
    /// Last change.
    pub date_last_modified: Option<String>,
    /// Name.
    pub name: Option<String>,
}
record!(Org);

/// `enabledUser`: `"true"`/`"false"`, `true`/`false`, `1`/`0` or `"1"`/`"0"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Flag {
    /// A JSON boolean.
    Bool(bool),
    /// A JSON number.
    Number(i64),
    /// A JSON string.
    Text(String),
}

impl Flag {
    /// The flag's value; `None` when it is none of the accepted spellings.
    pub fn value(&self) -> Option<bool> {
        match self {
            Flag::Bool(b) => Some(*b),
            Flag::Number(0) => Some(false),
            Flag::Number(1) => Some(true),
            Flag::Number(_) => None,
            Flag::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
        }
    }
}

/// A user: student, teacher, parent, guardian, relative, …
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Id.
    pub sourced_id: String,
    /// `active` | `tobedeleted`.
    pub status: Option<String>,
    /// Last change.
    pub date_last_modified: Option<String>,
    /// Whether the account is enabled (absent: enabled).
    pub enabled_user: Option<Flag>,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// `student`, `teacher`, `parent`, `guardian`, `relative`, `administrator`, `aide`,
    /// `proctor`.
    pub role: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Mobile number for text messages.
    pub sms: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Related users: a student's parents/guardians, a parent's children.
    #[serde(default)]
    pub agents: Vec<GuidRef>,
}
record!(User);

/// A class (section).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Class {
    /// Id.
    pub sourced_id: String,
    /// `active` | `tobedeleted`.
    pub status: Option<String>,
    /// Last change.
    pub date_last_modified: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// The school the class belongs to.
    pub school: Option<GuidRef>,
}
record!(Class);

/// An enrollment of a user in a class.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrollment {
    /// Id.
    pub sourced_id: String,
    /// `active` | `tobedeleted`.
    pub status: Option<String>,
    /// Last change.
    pub date_last_modified: Option<String>,
    /// `student`, `teacher`, `administrator`, `proctor`.
    pub role: Option<String>,
    /// The enrolled user.
    pub user: Option<GuidRef>,
    /// The class.
    pub class: Option<GuidRef>,
}
record!(Enrollment);

/// One collection the sync reads.
pub trait Collection: Record + serde::de::DeserializeOwned + Send + 'static {
    /// The path segment and the JSON key of the page's array (`users`).
    const NAME: &'static str;
}

impl Collection for Org {
    const NAME: &'static str = "orgs";
}
impl Collection for User {
    const NAME: &'static str = "users";
}
impl Collection for Class {
    const NAME: &'static str = "classes";
}
impl Collection for Enrollment {
    const NAME: &'static str = "enrollments";
}

/// A record of a collection as read: parsed, or the reason it could not be.
#[derive(Debug)]
pub enum Item<T> {
    /// Parsed.
    Ok(T),
    /// Not a valid record of the collection (`sourcedId` if one could be read).
    Bad {
        /// The id, when the record has one.
        sourced_id: Option<String>,
        /// What is wrong.
        message: String,
    },
}

/// A collection as read: each record with its position (1-based, across pages).
#[derive(Debug)]
pub struct Pulled<T> {
    /// `(position, record)`.
    pub items: Vec<(u64, Item<T>)>,
    /// Records skipped because an earlier page already delivered their `sourcedId` (the
    /// provider's data shifted between pages).
    pub duplicates: u64,
}

impl<T> Default for Pulled<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            duplicates: 0,
        }
    }
}

impl<T: Record> Pulled<T> {
    /// The records that parsed, with their positions.
    pub fn records(&self) -> impl Iterator<Item = (u64, &T)> {
        self.items.iter().filter_map(|(rec, item)| match item {
            Item::Ok(record) => Some((*rec, record)),
            Item::Bad { .. } => None,
        })
    }
}

/// Parses one record of `T` from a page's array element.
pub fn parse_item<T: Collection>(value: serde_json::Value) -> Item<T> {
    let sourced_id = value
        .get("sourcedId")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    match sourced_id.as_deref() {
        None | Some("") => Item::Bad {
            sourced_id: None,
            message: "the record has no sourcedId".into(),
        },
        // PostgreSQL cannot store U+0000: the CSV readers refuse it too (`nul_character`).
        Some(_) if crate::domain::json_holds_nul(&value) => Item::Bad {
            sourced_id,
            message: "the record holds a NUL character (U+0000), which cannot be stored; remove it at the provider".into(),
        },
        Some(_) => match serde_json::from_value::<T>(value) {
            Ok(record) => Item::Ok(record),
            Err(e) => Item::Bad {
                sourced_id,
                message: format!("not a valid {} record: {e}", T::NAME),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn enabled_user_accepts_strings_booleans_and_numbers() {
        for (raw, expected) in [
            (json!("true"), Some(true)),
            (json!("FALSE"), Some(false)),
            (json!(true), Some(true)),
            (json!(false), Some(false)),
            (json!(1), Some(true)),
            (json!(0), Some(false)),
            (json!("0"), Some(false)),
            (json!("maybe"), None),
            (json!(7), None),
        ] {
            let flag: Flag = serde_json::from_value(raw.clone()).unwrap();
            assert_eq!(flag.value(), expected, "{raw}");
        }
    }

    #[test]
    fn a_record_without_sourced_id_or_with_a_wrong_type_is_bad() {
        assert!(matches!(
            parse_item::<User>(json!({"givenName": "A"})),
            Item::Bad {
                sourced_id: None,
                ..
            }
        ));
        assert!(matches!(
            parse_item::<User>(json!({"sourcedId": "u1", "agents": "nope"})),
            Item::Bad {
                sourced_id: Some(_),
                ..
            }
        ));
        // Found by the fuzzing on PostgreSQL: the staging load failed and the sync with it.
        for record in [
            json!({"sourcedId": "u1", "givenName": "A\u{0}"}),
            json!({"sourcedId": "u1", "agents": [{"sourcedId": "p\u{0}"}]}),
            json!({"sourcedId": "u1", "x\u{0}": 1}),
        ] {
            assert!(
                matches!(parse_item::<User>(record), Item::Bad { sourced_id: Some(_), ref message } if message.contains("NUL")),
            );
        }
        let Item::Ok(user) =
            parse_item::<User>(json!({"sourcedId": "u1", "status": "tobedeleted"}))
        else {
            panic!("parses")
        };
        assert!(user.is_deleted());
    }
}
