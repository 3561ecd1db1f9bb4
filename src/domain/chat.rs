//! Chat records (`chats`, `chat_banners`): who started a chat and why a banner asks its
//! owner to remove a guardian, with the values exactly as stored.

use sea_orm::{DeriveActiveEnum, EnumIter};

/// Who started a chat (`chats.started_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum ChatStarter {
    /// The teacher who owns it.
    #[sea_orm(string_value = "owner")]
    Owner,
    /// A guardian, with a teacher of their child as the owner.
    #[sea_orm(string_value = "guardian")]
    Guardian,
}

impl ChatStarter {
    /// The stored and JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Guardian => "guardian",
        }
    }
}

/// Why a guardian stopped being an active contact of a chat's student
/// (`chat_banners.cause`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum BannerCause {
    /// A sync made the link inactive.
    #[sea_orm(string_value = "sync")]
    Sync,
    /// An approved edit removed the guardian from the student.
    #[sea_orm(string_value = "approved_edit")]
    ApprovedEdit,
    /// An admin erased the guardian from the student.
    #[sea_orm(string_value = "erased")]
    Erased,
    /// An admin restricted the guardian's link to the student (custody, a court order).
    #[sea_orm(string_value = "restricted")]
    Restricted,
}

impl BannerCause {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::ApprovedEdit => "approved_edit",
            Self::Erased => "erased",
            Self::Restricted => "restricted",
        }
    }

    /// What the chat's owner reads.
    pub fn message(self) -> &'static str {
        match self {
            Self::Sync => {
                "The school's records no longer list this guardian as an active contact of the student. Please remove them from this chat."
            }
            Self::ApprovedEdit => {
                "This guardian was removed from the student's contacts. Please remove them from this chat."
            }
            Self::Erased => {
                "An administrator erased this guardian from the student's contacts. Please remove them from this chat."
            }
            Self::Restricted => {
                "An administrator restricted contact with this guardian about this student. Please remove them from this chat."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ActiveEnum, Iterable};

    #[test]
    fn stored_values_are_the_names() {
        for s in ChatStarter::iter() {
            assert_eq!(s.to_value(), s.as_str());
        }
        for c in BannerCause::iter() {
            assert_eq!(c.to_value(), c.as_str());
        }
    }
}
