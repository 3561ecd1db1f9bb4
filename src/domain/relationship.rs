use super::ParseError;
use sea_orm::{DeriveActiveEnum, EnumIter};
use std::fmt;

/// How a contact is related to a student: Microsoft Graph's `contactRelationship`
/// vocabulary plus `administrator` from SDS v1, stored as given
/// (`student_contacts.relationship`). Every writer stores [`Relationship::as_str`]: the
/// importers parse the file's value into this type first, so no other value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum Relationship {
    /// A parent: a Parent Connection role.
    #[sea_orm(string_value = "parent")]
    Parent,
    /// A legal guardian: a Parent Connection role.
    #[sea_orm(string_value = "guardian")]
    Guardian,
    /// Another relative.
    #[sea_orm(string_value = "relative")]
    Relative,
    /// An aide.
    #[sea_orm(string_value = "aide")]
    Aide,
    /// A doctor.
    #[sea_orm(string_value = "doctor")]
    Doctor,
    /// A child of the student.
    #[sea_orm(string_value = "child")]
    Child,
    /// An administrator (SDS v1 only).
    #[sea_orm(string_value = "administrator")]
    Administrator,
    /// Any other relationship.
    #[sea_orm(string_value = "other")]
    Other,
}

impl Relationship {
    /// Every value, in vocabulary order.
    pub const ALL: [Relationship; 8] = [
        Self::Parent,
        Self::Guardian,
        Self::Relative,
        Self::Aide,
        Self::Doctor,
        Self::Child,
        Self::Administrator,
        Self::Other,
    ];

    /// Parses a relationship name, case-insensitively. Blank is not accepted here: callers
    /// decide what a blank means for their format.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let lower = raw.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == lower)
            .ok_or_else(|| {
                ParseError(format!(
                    "'{}' is not a relationship; expected one of {}",
                    raw.trim(),
                    Self::ALL.map(|r| r.as_str()).join(", ")
                ))
            })
    }

    /// The stored, lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parent => "parent",
            Self::Guardian => "guardian",
            Self::Relative => "relative",
            Self::Aide => "aide",
            Self::Doctor => "doctor",
            Self::Child => "child",
            Self::Administrator => "administrator",
            Self::Other => "other",
        }
    }

    /// True for the only roles a teacher sees, invites, chats with or sends digests to.
    pub fn is_parent_connection_role(self) -> bool {
        matches!(self, Self::Parent | Self::Guardian)
    }
}

impl fmt::Display for Relationship {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_case_insensitively() {
        assert_eq!(
            Relationship::parse(" GuArDiAn ").unwrap(),
            Relationship::Guardian
        );
        assert!(Relationship::parse("uncle").is_err());
        assert!(Relationship::Parent.is_parent_connection_role());
        assert!(!Relationship::Relative.is_parent_connection_role());
    }

    #[test]
    fn stored_values_are_the_names() {
        use sea_orm::ActiveEnum;
        for r in Relationship::ALL {
            assert_eq!(r.to_value(), r.as_str());
            assert_eq!(Relationship::try_from_value(&r.as_str().to_string()), Ok(r));
        }
    }
}
