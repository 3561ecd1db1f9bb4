//! Status values of the roster and of import runs, exactly as stored.

use sea_orm::{DeriveActiveEnum, EnumIter};
use serde::Serialize;

/// Whether a roster record (school, class, enrollment, student, staff member) is current
/// in the SIS (`{schools,classes,enrollments,students,staff}.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum RosterStatus {
    /// In the latest snapshot.
    #[sea_orm(string_value = "active")]
    Active,
    /// Absent from the latest snapshot (or marked inactive there); kept for history.
    #[sea_orm(string_value = "inactive")]
    Inactive,
}

/// How an import run ended (`sync_runs.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, EnumIter, DeriveActiveEnum)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum RunStatus {
    /// The snapshot was applied.
    #[sea_orm(string_value = "applied")]
    Applied,
    /// A dry run found no error: the snapshot would be applied.
    #[sea_orm(string_value = "dry_run")]
    DryRun,
    /// Errors in the input, or a guard, refused the snapshot; nothing changed.
    #[sea_orm(string_value = "refused")]
    Refused,
    /// The run failed (database or I/O); nothing changed.
    #[sea_orm(string_value = "failed")]
    Failed,
}

impl RunStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::DryRun => "dry_run",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }

    /// True when the CLI should exit 0.
    pub fn is_success(self) -> bool {
        matches!(self, Self::Applied | Self::DryRun)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ActiveEnum, Iterable};

    #[test]
    fn stored_names_round_trip() {
        for status in RunStatus::iter() {
            assert_eq!(status.to_value(), status.as_str());
            assert_eq!(
                RunStatus::try_from_value(&status.to_value()).unwrap(),
                status
            );
        }
        for status in RosterStatus::iter() {
            assert_eq!(
                RosterStatus::try_from_value(&status.to_value()).unwrap(),
                status
            );
        }
    }
}
