//! A teacher's contact request (`contact_requests`): what it proposes and where it stands,
//! with the values exactly as stored.

use sea_orm::{DeriveActiveEnum, EnumIter};

/// Status of a request (stored as `contact_requests.status`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Waiting for an admin.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// Approved and applied.
    #[sea_orm(string_value = "approved")]
    Approved,
    /// Rejected; nothing changed.
    #[sea_orm(string_value = "rejected")]
    Rejected,
}

impl RequestStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }
}

/// What a request proposes (`contact_requests.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum RequestAction {
    /// Add a contact to the student.
    #[sea_orm(string_value = "add")]
    Add,
    /// Change a contact's name, email, phone or relationship.
    #[sea_orm(string_value = "update")]
    Update,
    /// Remove a contact from the student.
    #[sea_orm(string_value = "remove")]
    Remove,
}

impl RequestAction {
    /// The stored and JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Update => "update",
            Self::Remove => "remove",
        }
    }

    /// Parses the stored or JSON name.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Add, Self::Update, Self::Remove]
            .into_iter()
            .find(|a| a.as_str() == raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ActiveEnum, Iterable};

    #[test]
    fn stored_values_are_the_names() {
        for s in RequestStatus::iter() {
            assert_eq!(s.to_value(), s.as_str());
            assert_eq!(
                serde_json::to_value(s.as_str()).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        for a in RequestAction::iter() {
            assert_eq!(a.to_value(), a.as_str());
            assert_eq!(RequestAction::parse(a.as_str()), Some(a));
        }
    }
}
