//! The one definition of "a contact a teacher may see": the rule behind the teacher's
//! contact list, chat members, invitations, the guardian's own pages and the guardians'
//! digest. A contact is visible about a student when its link to that student is active, its
//! relationship is a Parent Connection role (parent or guardian), no admin restricted the
//! link (a per-child restriction: `student_contacts.restriction_id`, see `restrictions`), and
//! the student is active. Whether the teacher
//! reaches the student (an active class the teacher actively teaches, in which the student is
//! actively enrolled) is `roster::teaches_student`; the digest applies the same class rules.
//!
//! The rule exists once, in Rust ([`teacher_may_see`]) and as SQL over a link alias and a
//! student alias ([`visible_link!`], [`visible_student!`]); a test keeps the two equal.

use super::Relationship;

/// The SQL condition on a `student_contacts` alias for a link a teacher may see: active, a
/// Parent Connection role and not restricted. A literal, so it can be `concat!`-ed into
/// `const` SQL: `visible_link!("l")` is `l.status = 'active' AND l.relationship IN ('parent',
/// 'guardian') AND l.restriction_id IS NULL`.
#[macro_export]
macro_rules! visible_link {
    ($l:literal) => {
        concat!(
            $l,
            ".status = 'active' AND ",
            $l,
            ".relationship IN ('parent', 'guardian') AND ",
            $l,
            ".restriction_id IS NULL"
        )
    };
}

/// The SQL condition on a `students` alias for a student whose contacts may be seen:
/// `visible_student!("s")` is `s.status = 'active'`.
#[macro_export]
macro_rules! visible_student {
    ($s:literal) => {
        concat!($s, ".status = 'active'")
    };
}

/// Why a linked contact is not one a teacher may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hidden {
    /// The link is inactive (removed by a sync, an approved edit or an admin).
    Inactive,
    /// The relationship is not a Parent Connection role.
    NotParentOrGuardian,
    /// An admin restricted the link (custody, a court order). Callers that answer teachers
    /// treat it as no link at all: the restriction itself is not theirs to see.
    Restricted,
}

/// What the rule reads of one link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkFacts {
    /// The link is active.
    pub active: bool,
    /// Its relationship.
    pub relationship: Option<Relationship>,
    /// An admin's restriction is open on it.
    pub restricted: bool,
}

/// Whether a link shows its contact to a teacher of the student, and if not, why.
pub fn teacher_may_see(link: LinkFacts) -> Result<(), Hidden> {
    if !link.active {
        Err(Hidden::Inactive)
    } else if !link
        .relationship
        .is_some_and(Relationship::is_parent_connection_role)
    {
        Err(Hidden::NotParentOrGuardian)
    } else if link.restricted {
        Err(Hidden::Restricted)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_names_exactly_the_parent_connection_roles() {
        let roles: Vec<String> = Relationship::ALL
            .into_iter()
            .filter(|r| r.is_parent_connection_role())
            .map(|r| format!("'{}'", r.as_str()))
            .collect();
        let sql = visible_link!("l");
        assert_eq!(
            sql,
            format!(
                "l.status = 'active' AND l.relationship IN ({}) AND l.restriction_id IS NULL",
                roles.join(", ")
            )
        );
        assert_eq!(visible_student!("s"), "s.status = 'active'");
    }

    fn link(active: bool, relationship: Option<Relationship>, restricted: bool) -> LinkFacts {
        LinkFacts {
            active,
            relationship,
            restricted,
        }
    }

    #[test]
    fn rust_rule() {
        let guardian = Some(Relationship::Guardian);
        assert_eq!(teacher_may_see(link(true, guardian, false)), Ok(()));
        assert_eq!(
            teacher_may_see(link(false, Some(Relationship::Parent), false)),
            Err(Hidden::Inactive)
        );
        assert_eq!(
            teacher_may_see(link(true, Some(Relationship::Aide), false)),
            Err(Hidden::NotParentOrGuardian)
        );
        assert_eq!(
            teacher_may_see(link(true, None, false)),
            Err(Hidden::NotParentOrGuardian)
        );
        assert_eq!(
            teacher_may_see(link(true, guardian, true)),
            Err(Hidden::Restricted)
        );
    }
}
