//! The state of a student–contact link (`student_contacts`) and where a stored value came
//! from: the values exactly as stored.

use sea_orm::{DeriveActiveEnum, EnumIter};

/// Whether a link counts (`student_contacts.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum LinkStatus {
    /// The contact is a current contact of the student.
    #[sea_orm(string_value = "active")]
    Active,
    /// Removed by a sync, an approved edit or an admin; kept for history.
    #[sea_orm(string_value = "inactive")]
    Inactive,
}

impl LinkStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }
}

/// Who set a contact's field or a link's relationship (`*_provenance`), and who holds a
/// removed link against the next sync (`student_contacts.held_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum Provenance {
    /// An import (SDS file or OneRoster).
    #[sea_orm(string_value = "sync")]
    Sync,
    /// An approved teacher request.
    #[sea_orm(string_value = "approved_edit")]
    ApprovedEdit,
    /// An administrator's direct change.
    #[sea_orm(string_value = "admin")]
    Admin,
    /// The guardian themself, on their page (only their preferred language).
    #[sea_orm(string_value = "guardian")]
    Guardian,
}

impl Provenance {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::ApprovedEdit => "approved_edit",
            Self::Admin => "admin",
            Self::Guardian => "guardian",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ActiveEnum, Iterable};

    #[test]
    fn stored_values_are_the_names() {
        for s in LinkStatus::iter() {
            assert_eq!(s.to_value(), s.as_str());
        }
        for p in Provenance::iter() {
            assert_eq!(p.to_value(), p.as_str());
        }
    }
}
