//! The enumerated values of School Data Sync files (Microsoft's "Default List of Values"):
//! user and enrollment roles with their role group, organization types and academic
//! session types. Every list is compared without regard to case; a value is written back
//! the way SDS writes it (camelCase).

use super::ParseError;
use std::fmt;

/// Declares an enum of SDS values with its canonical spellings, in documentation order.
macro_rules! sds_values {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order SDS documents them.
            pub const ALL: &'static [$name] = &[$(Self::$variant,)+];

            /// Parses a value without regard to case (surrounding blanks ignored). The error
            /// lists every accepted value.
            pub fn parse(raw: &str) -> Result<Self, ParseError> {
                let raw = raw.trim();
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(raw))
                    .ok_or_else(|| {
                        ParseError(format!(
                            "'{raw}' is not {}; expected one of {} (any case)",
                            $what,
                            Self::accepted()
                        ))
                    })
            }

            /// The value as SDS writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// Every accepted value, comma-separated, for messages and documentation.
            pub fn accepted() -> String {
                Self::ALL
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Which standing a role gives a person: SDS's default role group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleGroup {
    /// Staff: enrolled in a class, the person is staff of the class (its teacher in every
    /// rule of this service).
    Staff,
    /// A student.
    Student,
    /// No group (`other`): neither student nor staff.
    None,
}

sds_values! {
    /// A person's role in `roles.csv` `role` and `enrollments.csv` `role` (SDS v2.1), and a
    /// OneRoster user or enrollment `role`: every value SDS documents, plus `aid` (accepted
    /// by the helper module Microsoft points to for writing SDS v2.1 files) and `aide`
    /// (OneRoster 1.1's spelling of the same role).
    SdsRole, "a role" {
        /// `principal`.
        Principal => "principal",
        /// `chair`.
        Chair => "chair",
        /// `professor`.
        Professor => "professor",
        /// `researcher`.
        Researcher => "researcher",
        /// `adjunct`.
        Adjunct => "adjunct",
        /// `affiliate`.
        Affiliate => "affiliate",
        /// `occupationalTherapist`.
        OccupationalTherapist => "occupationalTherapist",
        /// `physicalTherapist`.
        PhysicalTherapist => "physicalTherapist",
        /// `speechTherapist`.
        SpeechTherapist => "speechTherapist",
        /// `visionTherapist`.
        VisionTherapist => "visionTherapist",
        /// `paraprofessional`.
        Paraprofessional => "paraprofessional",
        /// `specialServices`.
        SpecialServices => "specialServices",
        /// `advisor`.
        Advisor => "advisor",
        /// `proctor`.
        Proctor => "proctor",
        /// `nurse`.
        Nurse => "nurse",
        /// `officeStaff`.
        OfficeStaff => "officeStaff",
        /// `lecturer`.
        Lecturer => "lecturer",
        /// `itAdmin`.
        ItAdmin => "itAdmin",
        /// `administrator`.
        Administrator => "administrator",
        /// `teacher`.
        Teacher => "teacher",
        /// `faculty`.
        Faculty => "faculty",
        /// `staff`.
        Staff => "staff",
        /// `teacherAssistant`.
        TeacherAssistant => "teacherAssistant",
        /// `assistant`.
        Assistant => "assistant",
        /// `instructor`.
        Instructor => "instructor",
        /// `substitute`.
        Substitute => "substitute",
        /// `coach`.
        Coach => "coach",
        /// `alumni`.
        Alumni => "alumni",
        /// `student`.
        Student => "student",
        /// `other`: no role group.
        Other => "other",
        /// `aid` (sic), as Microsoft's SDS v2.1 helper module writes it.
        Aid => "aid",
        /// `aide`, OneRoster 1.1's spelling.
        Aide => "aide",
    }
}

impl SdsRole {
    /// The role's default role group.
    pub fn group(self) -> RoleGroup {
        match self {
            Self::Student => RoleGroup::Student,
            Self::Other => RoleGroup::None,
            _ => RoleGroup::Staff,
        }
    }

    /// What an enrollment in this role makes the person in the class: `None` for a role
    /// without a group (`other`).
    pub fn enrollment_kind(self) -> Option<EnrollmentKind> {
        match self.group() {
            RoleGroup::Staff => Some(EnrollmentKind::Teacher),
            RoleGroup::Student => Some(EnrollmentKind::Student),
            RoleGroup::None => None,
        }
    }
}

/// What an enrollment makes a person in a class, as stored in `enrollments.role`: every
/// Staff-group role is stored as `teacher` (staff of the class), the Student group as
/// `student`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnrollmentKind {
    /// A student of the class.
    Student,
    /// Staff of the class: its teacher for every rule (contacts, edits, chats, blocks,
    /// assignments, the class's digest switch).
    Teacher,
}

impl EnrollmentKind {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Student => "student",
            Self::Teacher => "teacher",
        }
    }
}

sds_values! {
    /// An organization's `type` (`orgs.csv`, OneRoster `/orgs`).
    OrgType, "an organization type" {
        /// `school`.
        School => "school",
        /// `ministryOfEducation`.
        MinistryOfEducation => "ministryOfEducation",
        /// `localAuthority`.
        LocalAuthority => "localAuthority",
        /// `department`.
        Department => "department",
        /// `university`.
        University => "university",
        /// `region`.
        Region => "region",
        /// `district`.
        District => "district",
        /// `college`.
        College => "college",
        /// `division`.
        Division => "division",
        /// `local`.
        Local => "local",
        /// `campus`.
        Campus => "campus",
        /// `province`.
        Province => "province",
        /// `state`.
        State => "state",
        /// `adultEducation`.
        AdultEducation => "adultEducation",
        /// `researchCenter`.
        ResearchCenter => "researchCenter",
        /// `national`.
        National => "national",
        /// `municipality`.
        Municipality => "municipality",
        /// `program`.
        Program => "program",
        /// `departmentOfEducation`.
        DepartmentOfEducation => "departmentOfEducation",
        /// `academicTrust`.
        AcademicTrust => "academicTrust",
    }
}

sds_values! {
    /// An academic session's `type` (`academicSessions.csv`), OneRoster 1.1's list.
    AcademicSessionType, "an academic session type" {
        /// `gradingPeriod`.
        GradingPeriod => "gradingPeriod",
        /// `semester`.
        Semester => "semester",
        /// `schoolYear`.
        SchoolYear => "schoolYear",
        /// `term`.
        Term => "term",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_parses_in_any_case_and_has_its_group() {
        assert_eq!(SdsRole::ALL.len(), 32);
        for role in SdsRole::ALL {
            for raw in [
                role.as_str().to_string(),
                role.as_str().to_ascii_uppercase(),
                format!(" {} ", role.as_str().to_ascii_lowercase()),
            ] {
                assert_eq!(SdsRole::parse(&raw).unwrap(), *role, "{raw}");
            }
        }
        assert_eq!(
            SdsRole::parse("Professor").unwrap().group(),
            RoleGroup::Staff
        );
        assert_eq!(SdsRole::parse("aid").unwrap().group(), RoleGroup::Staff);
        assert_eq!(
            SdsRole::parse("STUDENT").unwrap().group(),
            RoleGroup::Student
        );
        assert_eq!(SdsRole::parse("other").unwrap().group(), RoleGroup::None);
        assert_eq!(SdsRole::Other.enrollment_kind(), None);
        assert_eq!(
            SdsRole::OccupationalTherapist.enrollment_kind(),
            Some(EnrollmentKind::Teacher)
        );
        assert_eq!(
            SdsRole::Student
                .enrollment_kind()
                .map(EnrollmentKind::as_str),
            Some("student")
        );
    }

    #[test]
    fn an_unknown_value_lists_the_accepted_ones() {
        let message = SdsRole::parse("wizard").unwrap_err().0;
        assert!(message.starts_with("'wizard' is not a role; expected one of principal, chair,"));
        assert!(message.contains("occupationalTherapist"), "{message}");
        assert!(SdsRole::parse("").is_err());
        let message = OrgType::parse("castle").unwrap_err().0;
        assert!(message.contains("academicTrust"), "{message}");
        assert_eq!(OrgType::ALL.len(), 20);
        assert_eq!(
            OrgType::parse("LOCALAUTHORITY").unwrap(),
            OrgType::LocalAuthority
        );
        assert_eq!(AcademicSessionType::ALL.len(), 4);
        assert_eq!(
            AcademicSessionType::parse("schoolyear").unwrap(),
            AcademicSessionType::SchoolYear
        );
        assert!(AcademicSessionType::parse("quarter").is_err());
    }
}
