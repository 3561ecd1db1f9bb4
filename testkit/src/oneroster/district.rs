//! The district of [`crate::generate`] as a OneRoster 1.1 provider serves it, made page by
//! page from the seed: users are listed teachers first, then family by family (its children,
//! then its contacts), each student's and contact's `agents` naming the other side of their
//! links. Only the generator's per-family offsets and, once changed, the positions of the
//! changed users are held.

use crate::generate::{
    self, ContactRow, FAMILY_NAMES, GIVEN_NAMES, Plan, SCHOOL_KINDS, TAG_CONTACT, TAG_SCHOOL,
    TAG_STUDENT, TAG_TEACHER, ascii_lower, pick,
};
use crate::rng::mix;
use std::fmt::Write as _;

/// `dateLastModified` of every record as first served.
pub const BASE_DATE: &str = "2026-01-10T08:00:00.000Z";
/// `dateLastModified` of the users [`District::changed`] changed.
pub const CHANGE_DATE: &str = "2026-02-10T08:00:00.000Z";
/// Per-10,000 shares of the change: contacts given a new phone, links dropped.
const CHANGED_CONTACTS_PER_10K: u64 = 100;
const REMOVED_LINKS_PER_10K: u64 = 50;
const TAG_OR_CONTACT: u64 = 101;
const TAG_OR_LINK: u64 = 102;
const TAG_OR_PHONE: u64 = 103;

/// What [`District::changed`] changed.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Changes {
    /// Contacts with a new phone number.
    pub contacts: u64,
    /// Student–contact links dropped from both sides' `agents`.
    pub links: u64,
    /// Users with the later `dateLastModified` (what a delta pull receives).
    pub users: u64,
}

/// Who is at a position of `/users`.
#[derive(Debug, Clone, Copy)]
enum Who {
    Teacher(u64),
    Student { index: u64, family: usize },
    Contact { index: u64, family: usize },
}

/// A generated district as a provider serves it.
pub struct District {
    plan: Plan,
    changed: bool,
    /// Positions in `/users` of the users changed (ascending), once [`District::changed`].
    changed_users: Vec<u32>,
    changes: Changes,
}

impl std::fmt::Debug for District {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("District")
            .field("students", &self.plan.students)
            .field("changes", &self.changes)
            .finish_non_exhaustive()
    }
}

impl District {
    /// The district `generate(dir, students, seed)` writes.
    pub fn new(students: u64, seed: u64) -> anyhow::Result<Self> {
        Ok(Self {
            plan: Plan::new(students, seed)?,
            changed: false,
            changed_users: Vec::new(),
            changes: Changes::default(),
        })
    }

    /// The same district after a change: 1% of the contacts get a new phone number and
    /// 0.5% of the links are dropped (from both sides' `agents`); every user concerned gets
    /// [`CHANGE_DATE`].
    pub fn changed(&self) -> Self {
        let plan = Plan::new(self.plan.students, self.plan.seed).expect("the same plan");
        let mut district = Self {
            plan,
            changed: true,
            changed_users: Vec::new(),
            changes: Changes::default(),
        };
        district.changes.contacts = (0..district.plan.contacts())
            .filter(|&c| district.contact_changed(c))
            .count() as u64;
        district.changes.links = (0..district.plan.links())
            .filter(|&l| district.link_removed(l))
            .count() as u64;
        district.changed_users = (0..district.users())
            .filter(|&p| district.user_changed(district.who(p)))
            .map(|p| p as u32)
            .collect();
        district.changes.users = district.changed_users.len() as u64;
        district
    }

    /// The district as first served (before any change).
    pub fn original(&self) -> Self {
        Self::new(self.plan.students, self.plan.seed).expect("the same plan")
    }

    /// What [`District::changed`] changed (zero before).
    pub fn changes(&self) -> Changes {
        self.changes
    }

    /// Rows of `/users`.
    pub fn users(&self) -> u64 {
        self.plan.classes() + self.plan.students + self.plan.contacts()
    }

    /// The number of records of `collection` modified after `since` (all without it).
    pub fn count(&self, collection: &str, since: Option<&str>) -> u64 {
        match (collection, self.window(since)) {
            (_, Window::None) => 0,
            ("users", Window::Changed) => self.changed_users.len() as u64,
            (_, Window::Changed) => 0,
            ("orgs", Window::All) => self.plan.schools,
            ("users", Window::All) => self.users(),
            ("classes", Window::All) => self.plan.classes(),
            ("enrollments", Window::All) => self.plan.students + self.plan.classes(),
            _ => 0,
        }
    }

    /// A page of `collection` as the JSON array's elements, written into `out`
    /// comma-separated.
    pub fn write_page(
        &self,
        out: &mut String,
        collection: &str,
        since: Option<&str>,
        offset: u64,
        limit: u64,
    ) {
        let total = self.count(collection, since);
        let end = offset.saturating_add(limit).min(total);
        let changed = matches!(self.window(since), Window::Changed);
        let mut contact = ContactRow::default();
        for i in offset..end {
            if i > offset {
                out.push(',');
            }
            match collection {
                "orgs" => self.write_org(out, i),
                "users" => {
                    let position = if changed {
                        u64::from(self.changed_users[i as usize])
                    } else {
                        i
                    };
                    self.write_user(out, self.who(position), &mut contact);
                }
                "classes" => self.write_class(out, i),
                _ => self.write_enrollment(out, i),
            }
        }
    }

    /// `GET /users/{id}`: the user as JSON, if the district has it.
    pub fn user_by_id(&self, id: &str) -> Option<serde_json::Value> {
        let number = |prefix: &str| id.strip_prefix(prefix)?.parse::<u64>().ok();
        let who = if let Some(i) = number("tch-") {
            (i < self.plan.classes()).then_some(Who::Teacher(i))?
        } else if let Some(i) = number("stu-") {
            (i < self.plan.students).then(|| Who::Student {
                index: i,
                family: Plan::family_of(&self.plan.family_students, i),
            })?
        } else if let Some(i) = number(generate::CONTACT_PREFIX) {
            (i < self.plan.contacts()).then(|| Who::Contact {
                index: i,
                family: Plan::family_of(&self.plan.family_contacts, i),
            })?
        } else {
            return None;
        };
        let mut out = String::new();
        self.write_user(&mut out, who, &mut ContactRow::default());
        serde_json::from_str(&out).ok()
    }

    fn window(&self, since: Option<&str>) -> Window {
        match since {
            None => Window::All,
            Some(since) if BASE_DATE > since => Window::All,
            Some(since) if self.changed && CHANGE_DATE > since => Window::Changed,
            Some(_) => Window::None,
        }
    }

    fn contact_changed(&self, contact: u64) -> bool {
        self.changed
            && mix(self.plan.seed, TAG_OR_CONTACT, contact) % 10_000 < CHANGED_CONTACTS_PER_10K
    }

    fn link_removed(&self, link: u64) -> bool {
        self.changed && mix(self.plan.seed, TAG_OR_LINK, link) % 10_000 < REMOVED_LINKS_PER_10K
    }

    fn family_range(starts: &[u32], family: usize) -> std::ops::Range<u64> {
        u64::from(starts[family])..u64::from(starts[family + 1])
    }

    /// The link index of (`student`, `contact`) of `family` (as the generator numbers
    /// `relationships.csv`).
    fn link(&self, family: usize, student: u64, contact: u64) -> u64 {
        let students = Self::family_range(&self.plan.family_students, family);
        let contacts = Self::family_range(&self.plan.family_contacts, family);
        u64::from(self.plan.family_links[family])
            + (student - students.start) * (contacts.end - contacts.start)
            + (contact - contacts.start)
    }

    /// The other side of each of the user's links that is not dropped.
    fn agents(&self, who: Who) -> Vec<String> {
        match who {
            Who::Teacher(_) => Vec::new(),
            Who::Student { index, family } => {
                Self::family_range(&self.plan.family_contacts, family)
                    .filter(|&c| !self.link_removed(self.link(family, index, c)))
                    .map(generate::contact_id)
                    .collect()
            }
            Who::Contact { index, family } => {
                Self::family_range(&self.plan.family_students, family)
                    .filter(|&s| !self.link_removed(self.link(family, s, index)))
                    .map(generate::student_id)
                    .collect()
            }
        }
    }

    fn user_changed(&self, who: Who) -> bool {
        match who {
            Who::Teacher(_) => false,
            Who::Student { index, family } => {
                Self::family_range(&self.plan.family_contacts, family)
                    .any(|c| self.link_removed(self.link(family, index, c)))
            }
            Who::Contact { index, family } => {
                self.contact_changed(index)
                    || Self::family_range(&self.plan.family_students, family)
                        .any(|s| self.link_removed(self.link(family, s, index)))
            }
        }
    }

    fn who(&self, position: u64) -> Who {
        let teachers = self.plan.classes();
        if position < teachers {
            return Who::Teacher(position);
        }
        let rest = position - teachers;
        let start = |f: usize| {
            u64::from(self.plan.family_students[f]) + u64::from(self.plan.family_contacts[f])
        };
        let (mut lo, mut hi) = (0usize, self.plan.families() as usize);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if start(mid) <= rest {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let k = rest - start(lo);
        let students = Self::family_range(&self.plan.family_students, lo);
        let children = students.end - students.start;
        if k < children {
            Who::Student {
                index: students.start + k,
                family: lo,
            }
        } else {
            Who::Contact {
                index: u64::from(self.plan.family_contacts[lo]) + k - children,
                family: lo,
            }
        }
    }

    fn write_org(&self, out: &mut String, school: u64) {
        let hash = mix(self.plan.seed, TAG_SCHOOL, school);
        let name = format!(
            "{} {}",
            pick(FAMILY_NAMES, hash),
            pick(SCHOOL_KINDS, hash >> 20)
        );
        let _ = write!(
            out,
            r#"{{"sourcedId":"{}","status":"active","dateLastModified":"{BASE_DATE}","name":{},"type":"school"}}"#,
            generate::school_id(school),
            json(&name)
        );
    }

    fn write_class(&self, out: &mut String, class: u64) {
        let school = self.plan.school_of_class(class);
        let title = class - u64::from(self.plan.class_start[school as usize]) + 1;
        let _ = write!(
            out,
            r#"{{"sourcedId":"{}","status":"active","dateLastModified":"{BASE_DATE}","title":"Homeroom {title}","school":{{"sourcedId":"{}","type":"org"}}}}"#,
            generate::class_id(class),
            generate::school_id(school)
        );
    }

    fn write_enrollment(&self, out: &mut String, i: u64) {
        let students = self.plan.students;
        let (id, user, class, role) = if i < students {
            let (_, class) = self.plan.placement(i);
            (
                format!("enr-s{i}"),
                generate::student_id(i),
                class,
                "student",
            )
        } else {
            let teacher = i - students;
            (
                format!("enr-t{teacher}"),
                generate::teacher_id(teacher),
                teacher,
                "teacher",
            )
        };
        let _ = write!(
            out,
            r#"{{"sourcedId":"{id}","status":"active","dateLastModified":"{BASE_DATE}","role":"{role}","user":{{"sourcedId":"{user}","type":"user"}},"class":{{"sourcedId":"{}","type":"class"}},"school":{{"sourcedId":"{}","type":"org"}}}}"#,
            generate::class_id(class),
            generate::school_id(self.plan.school_of_class(class))
        );
    }

    fn write_user(&self, out: &mut String, who: Who, contact: &mut ContactRow) {
        let seed = self.plan.seed;
        let date = if self.user_changed(who) {
            CHANGE_DATE
        } else {
            BASE_DATE
        };
        let (id, given, family, role, school, email, phone, sms);
        match who {
            Who::Teacher(i) => {
                let hash = mix(seed, TAG_TEACHER, i);
                given = pick(GIVEN_NAMES, hash);
                family = pick(FAMILY_NAMES, hash >> 24);
                id = generate::teacher_id(i);
                role = "teacher";
                school = Some(self.plan.school_of_class(i));
                email = format!(
                    "{}.{}{}@schools.example.org",
                    ascii_lower(given),
                    ascii_lower(family),
                    i
                );
                (phone, sms) = (String::new(), String::new());
            }
            Who::Student { index, family: f } => {
                given = pick(GIVEN_NAMES, mix(seed, TAG_STUDENT, index));
                family = self.plan.family_name(f);
                id = generate::student_id(index);
                role = "student";
                school = Some(self.plan.placement(index).0);
                (email, phone, sms) = (String::new(), String::new(), String::new());
            }
            Who::Contact { index, family: f } => {
                contact.fill(&self.plan, index);
                if self.contact_changed(index) {
                    contact.phone.clear();
                    generate::write_phone(&mut contact.phone, mix(seed, TAG_OR_PHONE, index));
                }
                given = contact.given;
                family = contact.family;
                id = contact.id.clone();
                let offset = index - u64::from(self.plan.family_contacts[f]);
                role = match generate::relationship_role(
                    offset,
                    mix(seed, TAG_CONTACT, index) >> 48,
                ) {
                    "parent" => "parent",
                    "guardian" => "guardian",
                    _ => "relative",
                };
                school = None;
                email = contact.email.clone();
                (phone, sms) = if contact.sms_column {
                    (String::new(), contact.phone.clone())
                } else {
                    (contact.phone.clone(), String::new())
                };
            }
        }
        let _ = write!(
            out,
            r#"{{"sourcedId":"{id}","status":"active","dateLastModified":"{date}","enabledUser":"true","givenName":{},"familyName":{},"role":"{role}""#,
            json(given),
            json(family)
        );
        for (key, value) in [("email", &email), ("phone", &phone), ("sms", &sms)] {
            if !value.is_empty() {
                let _ = write!(out, r#","{key}":{}"#, json(value));
            }
        }
        out.push_str(r#","agents":["#);
        for (i, agent) in self.agents(who).iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, r#"{{"sourcedId":"{agent}","type":"user"}}"#);
        }
        out.push(']');
        if let Some(school) = school {
            let _ = write!(
                out,
                r#","orgs":[{{"sourcedId":"{}","type":"org"}}]"#,
                generate::school_id(school)
            );
        }
        out.push('}');
    }
}

#[derive(Debug, Clone, Copy)]
enum Window {
    All,
    Changed,
    None,
}

/// A JSON string literal.
fn json(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
