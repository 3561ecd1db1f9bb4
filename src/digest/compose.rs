//! Composing digests: set-based SQL that streams, in contact order and one keyset page at
//! a time, every active parent/guardian with an email and something to report, with their
//! children, classes and the assignments due in the two windows.
//!
//! Included: links that are `active` with relationship `parent` or `guardian`; contacts
//! with an email; active students with an active student enrollment in an active class
//! whose owner did not opt out (`class_digest_settings.notify_guardians`); assignments due
//! in `[previous.start, upcoming.end)`. Everything else — inactive links, other
//! relationships, inactive students, enrollments or classes, opted-out classes, contacts
//! without an email, erased contacts (their links are gone) — never matches, and a
//! guardian with nothing in either window gets no digest.

use super::week::Windows;
use crate::contacts::display_name;
use crate::db::{self, engine};
use crate::domain::TenantId;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};
use serde::Serialize;
use std::collections::HashMap;

/// Guardians per page when none is given.
pub const DEFAULT_PAGE_SIZE: u64 = 100;

/// One guardian's digest.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    /// Contact id.
    pub contact_id: i64,
    /// Where it goes.
    pub email: String,
    /// The guardian's name to greet.
    pub display_name: String,
    /// Each child with something to report, by name.
    pub children: Vec<ChildDigest>,
    /// The guardian's preferred language (BCP 47), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// One child of a digest.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildDigest {
    /// The student's SIS source id.
    pub student_id: String,
    /// Name to show.
    pub name: String,
    /// The child's classes with something to report, by title.
    pub classes: Vec<ClassDigest>,
}

/// One class of a child.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassDigest {
    /// The class's SIS source id.
    pub class_id: String,
    /// Title (the source id when the class has none).
    pub title: String,
    /// Due in the 7 days before the send instant, by due time.
    pub previous: Vec<DueItem>,
    /// Due in the 7 days from the send instant, by due time.
    pub upcoming: Vec<DueItem>,
}

/// One assignment in a digest.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DueItem {
    /// The assignment's external id.
    pub external_id: String,
    /// Title.
    pub title: String,
    /// Due (UTC).
    pub due_at: DateTime<Utc>,
    /// Points, if any.
    pub points: Option<f64>,
}

impl Digest {
    /// Assignments listed, both windows, every child.
    pub fn assignment_count(&self) -> usize {
        self.children
            .iter()
            .flat_map(|c| &c.classes)
            .map(|k| k.previous.len() + k.upcoming.len())
            .sum()
    }
}

/// The joins from a link `l` to the assignments the digest lists.
const JOINS: &str = "JOIN students s ON s.id = l.student_id \
     JOIN enrollments e ON e.person_id = s.id \
     JOIN classes k ON k.id = e.class_id \
     JOIN assignments a ON a.class_id = k.id \
     LEFT JOIN class_digest_settings d ON d.class_id = k.id";

// The inclusion rules (module documentation) in three parts, each written once: the link
// and its student, the student's enrollment, the class and its assignments in the windows.
// `$1` is the tenant, `$2`/`$3` the union of the two windows.
macro_rules! link_rules {
    () => {
        concat!(
            "l.tenant_id = $1 AND ",
            $crate::visible_link!("l"),
            " AND s.tenant_id = $1 AND ",
            $crate::visible_student!("s")
        )
    };
}
macro_rules! enrollment_rules {
    () => {
        "e.tenant_id = $1 AND e.role = 'student' AND e.status = 'active'"
    };
}
macro_rules! class_rules {
    () => {
        "k.tenant_id = $1 AND k.status = 'active' \
         AND (d.notify_guardians IS NULL OR d.notify_guardians = TRUE)"
    };
}
macro_rules! assignment_rules {
    () => {
        "a.tenant_id = $1 AND a.due_at >= $2 AND a.due_at < $3"
    };
}

/// Every inclusion rule, over the joins of [`JOINS`].
const RULES: &str = concat!(
    link_rules!(),
    " AND ",
    enrollment_rules!(),
    " AND ",
    class_rules!(),
    " AND ",
    assignment_rules!()
);

/// The rules on a link `l` and its student `s`.
const LINK_RULES: &str = link_rules!();

/// Assignment lines per student (`student_id`, `lines`) under the enrollment and class
/// rules, counted per class before they are summed per student.
const PER_STUDENT: &str = concat!(
    "SELECT e.person_id AS student_id, SUM(pc.lines) AS lines FROM enrollments e JOIN (",
    "SELECT a.class_id, COUNT(*) AS lines FROM assignments a JOIN classes k ON k.id = a.class_id ",
    "LEFT JOIN class_digest_settings d ON d.class_id = k.id WHERE ",
    class_rules!(),
    " AND ",
    assignment_rules!(),
    " GROUP BY a.class_id) pc ON pc.class_id = e.class_id WHERE ",
    enrollment_rules!(),
    " GROUP BY e.person_id"
);

/// `EXISTS`: contact `c` has something to report.
fn has_report() -> String {
    format!(
        "EXISTS (SELECT 1 FROM student_contacts l {JOINS} WHERE l.contact_id = c.id AND {RULES})"
    )
}

/// A contact that receives the digest: a plausible address the mail server has not
/// refused for good (`email_suppressions`), and not unsubscribed from the digest
/// (`digest_unsubscribes`, an anti-join on its unique (tenant, contact) index).
const RECIPIENT: &str = "c.tenant_id = $1 AND c.email IS NOT NULL AND c.email LIKE '%_@_%' \
     AND NOT EXISTS (SELECT 1 FROM email_suppressions x WHERE x.tenant_id = $1 AND x.email = LOWER(c.email)) \
     AND NOT EXISTS (SELECT 1 FROM digest_unsubscribes u WHERE u.tenant_id = $1 AND u.contact_id = c.id)";

/// What a real run recorded: `count` new deliveries with ids in `first_id..=last_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    /// New deliveries.
    pub count: u64,
    /// Lowest new id.
    pub first_id: i64,
    /// Highest new id.
    pub last_id: i64,
}

/// Streams a tenant's digests for one week, page by page.
pub struct Composer<'a, C> {
    conn: &'a C,
    tenant: TenantId,
    windows: Windows,
    page_size: u64,
    after: i64,
    done: bool,
}

impl<'a, C: ConnectionTrait> Composer<'a, C> {
    /// A composer for `tenant` and `windows`, `page_size` guardians at a time.
    pub fn new(conn: &'a C, tenant: TenantId, windows: Windows, page_size: u64) -> Self {
        Self {
            conn,
            tenant,
            windows,
            page_size: page_size.max(1),
            after: 0,
            done: false,
        }
    }

    fn window_values(&self) -> Vec<Value> {
        vec![
            Value::BigInt(Some(self.tenant.0)),
            Value::ChronoDateTimeUtc(Some(self.windows.previous.start)),
            Value::ChronoDateTimeUtc(Some(self.windows.upcoming.end)),
        ]
    }

    /// How many guardians get a digest.
    pub async fn count(&self) -> Result<u64, DbErr> {
        let n = db::count(
            self.conn,
            &format!(
                "SELECT COUNT(*) FROM contacts c WHERE {RECIPIENT} AND {}",
                has_report()
            ),
            self.window_values(),
        )
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The next page of digests in contact order; `None` when every guardian was seen.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Digest>>, DbErr> {
        if self.done {
            return Ok(None);
        }
        let mut values = self.window_values();
        values.push(Value::BigInt(Some(self.after)));
        values.push(Value::BigInt(Some(
            i64::try_from(self.page_size).unwrap_or(i64::MAX),
        )));
        let ids = db::query(
            self.conn,
            &format!(
                "SELECT c.id FROM contacts c WHERE {RECIPIENT} AND c.id > $4 AND {} \
                 ORDER BY c.id LIMIT $5",
                has_report()
            ),
            values,
        )
        .await?;
        let ids = ids
            .iter()
            .map(|r| ContactId::from_query_result(r, "").map(|r| r.id))
            .collect::<Result<Vec<_>, _>>()?;
        let (Some(first), Some(last)) = (ids.first().copied(), ids.last().copied()) else {
            self.done = true;
            return Ok(None);
        };
        if (ids.len() as u64) < self.page_size {
            self.done = true;
        }
        self.after = last;
        let digests = self.page_rows(first, last).await?;
        Ok(Some(digests))
    }

    /// Records, in one set-based statement inside `conn`'s transaction, one
    /// `digest_deliveries` row (guardian, the students it is about, the assignment lines)
    /// for every guardian with a digest this week who has none yet; returns how many were
    /// new and their id range. The caller holds the tenant's run lock
    /// ([`lock_tenant`](super::deliver::lock_tenant)), so the range holds no other run of
    /// this tenant. Dispatchers hand the new deliveries to the outbox a batch at a time
    /// ([`hand_over`](super::deliver::hand_over)); the email is rendered when it is sent.
    ///
    /// The assignments are counted per class first and summed per child, so the statement
    /// joins a guardian's children and their enrollments (about 14 rows for two children in
    /// seven classes), not every assignment line (about 84). Guardians already recorded for
    /// the week are skipped before the join, so a re-run is cheap.
    pub async fn queue_all(&self, week: &str, now: DateTime<Utc>) -> Result<Queued, DbErr> {
        let students = engine::json::distinct_array_text(self.conn, "s.source_id");
        let mut values = self.window_values();
        values.push(week.into());
        values.push(Value::ChronoDateTimeUtc(Some(now)));
        let insert = format!(
            "INSERT INTO digest_deliveries (tenant_id, contact_id, week, students, assignments, queued_at) \
             SELECT $1, c.id, $4, {students}, SUM(ps.lines), $5 \
             FROM contacts c JOIN student_contacts l ON l.contact_id = c.id \
             JOIN students s ON s.id = l.student_id JOIN ({PER_STUDENT}) ps ON ps.student_id = s.id \
             WHERE {RECIPIENT} AND {LINK_RULES} \
               AND NOT EXISTS (SELECT 1 FROM digest_deliveries q WHERE q.week = $4 AND q.contact_id = c.id) \
             GROUP BY c.id \
             ON CONFLICT (week, contact_id) DO NOTHING"
        );
        let range =
            engine::claim::insert_range(self.conn, "digest_deliveries", &insert, values).await?;
        Ok(Queued {
            count: u64::try_from(range.count).unwrap_or(0),
            first_id: range.first_id,
            last_id: range.last_id,
        })
    }

    /// The digests of guardians `contacts` as they are now (a guardian with nothing to
    /// report, or no email any more, has none).
    pub async fn for_contacts(&self, contacts: &[i64]) -> Result<Vec<Digest>, DbErr> {
        if contacts.is_empty() {
            return Ok(Vec::new());
        }
        let list = db::id_list(contacts.iter().copied());
        self.rows(
            &format!("c.id IN ({list}) AND l.contact_id IN ({list})"),
            vec![],
        )
        .await
    }

    /// The digests of the guardians `first..=last` (all eligible: the page's ids).
    async fn page_rows(&self, first: i64, last: i64) -> Result<Vec<Digest>, DbErr> {
        self.rows(
            "c.id >= $2 AND c.id <= $3 AND l.contact_id >= $2 AND l.contact_id <= $3",
            vec![Value::BigInt(Some(first)), Value::BigInt(Some(last))],
        )
        .await
    }

    /// The digests of the guardians `contacts` selects (`$2`… are `extra`), in three
    /// queries — the guardians and their children, the children's classes, the classes'
    /// assignments — so a class's assignments are read once, not once per child and
    /// guardian (a batch of 1,000 guardians reads about 11,000 rows instead of 84,000).
    async fn rows(&self, contacts: &str, extra: Vec<Value>) -> Result<Vec<Digest>, DbErr> {
        let tenant = Value::BigInt(Some(self.tenant.0));
        let mut values = vec![tenant.clone()];
        values.extend(extra);
        let children = db::query(
            self.conn,
            &format!(
                "SELECT c.id AS contact_id, c.email, c.given_name AS guardian_given, c.family_name AS guardian_family, c.preferred_language, \
                   s.id AS student_id, s.source_id AS student_source_id, s.given_name AS student_given, s.family_name AS student_family \
                 FROM contacts c JOIN student_contacts l ON l.contact_id = c.id JOIN students s ON s.id = l.student_id \
                 WHERE {RECIPIENT} AND {contacts} AND {LINK_RULES} ORDER BY c.id, s.id"
            ),
            values,
        )
        .await?
        .iter()
        .map(|row| ChildRow::from_query_result(row, ""))
        .collect::<Result<Vec<_>, _>>()?;
        let students = id_list(children.iter().map(|r| Ok(r.student_id)))?;
        let classes = self.classes_of(&students).await?;
        let items = self
            .assignments_of(&id_list(
                classes.values().flatten().map(|(id, _, _)| Ok(*id)),
            )?)
            .await?;
        let mut digests: Vec<Digest> = Vec::new();
        for row in children {
            let (contact_id, student) = (row.contact_id, row.student_id);
            let child_classes: Vec<ClassDigest> = classes
                .get(&student)
                .into_iter()
                .flatten()
                .filter_map(|(id, source_id, title)| {
                    let due = items.get(id)?;
                    let (previous, upcoming) = due
                        .iter()
                        .cloned()
                        .partition(|item| item.due_at < self.windows.send_at);
                    Some(ClassDigest {
                        class_id: source_id.clone(),
                        title: title.clone(),
                        previous,
                        upcoming,
                    })
                })
                .collect();
            if child_classes.is_empty() {
                continue;
            }
            if digests.last().is_none_or(|d| d.contact_id != contact_id) {
                let email = row.email.clone().unwrap_or_default();
                digests.push(Digest {
                    contact_id,
                    display_name: display_name(
                        row.guardian_given.as_deref(),
                        row.guardian_family.as_deref(),
                        Some(&email),
                        None,
                    ),
                    email,
                    children: Vec::new(),
                    language: row.preferred_language.clone(),
                });
            }
            let source_id = row.student_source_id;
            let name = display_name(
                row.student_given.as_deref(),
                row.student_family.as_deref(),
                None,
                None,
            );
            if let Some(digest) = digests.last_mut() {
                digest.children.push(ChildDigest {
                    name: if name == "(no name)" {
                        source_id.clone()
                    } else {
                        name
                    },
                    student_id: source_id,
                    classes: child_classes,
                });
            }
        }
        for digest in &mut digests {
            sort(digest);
        }
        Ok(digests)
    }

    /// Each student's classes that count for the digest: (id, source id, title).
    async fn classes_of(
        &self,
        students: &str,
    ) -> Result<HashMap<i64, Vec<(i64, String, String)>>, DbErr> {
        let mut out: HashMap<i64, Vec<(i64, String, String)>> = HashMap::new();
        if students.is_empty() {
            return Ok(out);
        }
        let rows = db::query(
            self.conn,
            &format!(
                "SELECT e.person_id AS student_id, k.id AS class_id, k.source_id, k.title FROM enrollments e JOIN classes k ON k.id = e.class_id \
                 LEFT JOIN class_digest_settings d ON d.class_id = k.id \
                 WHERE e.person_id IN ({students}) AND {} AND {} ORDER BY e.person_id, k.id",
                enrollment_rules!(),
                class_rules!()
            ),
            vec![Value::BigInt(Some(self.tenant.0))],
        )
        .await?;
        for row in &rows {
            let row = ClassRow::from_query_result(row, "")?;
            let title = row
                .title
                .filter(|t| !t.trim().is_empty())
                .unwrap_or_else(|| row.source_id.clone());
            out.entry(row.student_id)
                .or_default()
                .push((row.class_id, row.source_id, title));
        }
        Ok(out)
    }

    /// Each class's assignments due in the two windows, by due time.
    async fn assignments_of(&self, classes: &str) -> Result<HashMap<i64, Vec<DueItem>>, DbErr> {
        let mut out: HashMap<i64, Vec<DueItem>> = HashMap::new();
        if classes.is_empty() {
            return Ok(out);
        }
        let rows = db::query(
            self.conn,
            &format!(
                "SELECT a.class_id, a.external_id, a.title, a.due_at, a.points FROM assignments a \
                 WHERE a.class_id IN ({classes}) AND {} ORDER BY a.class_id, a.due_at, a.id",
                assignment_rules!()
            ),
            self.window_values(),
        )
        .await?;
        for row in &rows {
            let row = DueRow::from_query_result(row, "")?;
            out.entry(row.class_id).or_default().push(DueItem {
                external_id: row.external_id,
                title: row.title,
                due_at: row.due_at,
                points: row.points,
            });
        }
        Ok(out)
    }
}

/// A guardian's id, read by name.
#[derive(Debug, FromQueryResult)]
struct ContactId {
    id: i64,
}

/// A guardian and one of their children.
#[derive(Debug, FromQueryResult)]
struct ChildRow {
    contact_id: i64,
    email: Option<String>,
    guardian_given: Option<String>,
    guardian_family: Option<String>,
    preferred_language: Option<String>,
    student_id: i64,
    student_source_id: String,
    student_given: Option<String>,
    student_family: Option<String>,
}

/// A child's class that counts for the digest.
#[derive(Debug, FromQueryResult)]
struct ClassRow {
    student_id: i64,
    class_id: i64,
    source_id: String,
    title: Option<String>,
}

/// An assignment due in the windows.
#[derive(Debug, FromQueryResult)]
struct DueRow {
    class_id: i64,
    external_id: String,
    title: String,
    due_at: DateTime<Utc>,
    points: Option<f64>,
}

/// Distinct ids as an SQL list (`1, 2, 3`; empty when there are none).
fn id_list(ids: impl Iterator<Item = Result<i64, DbErr>>) -> Result<String, DbErr> {
    Ok(db::id_list(
        ids.collect::<Result<std::collections::BTreeSet<i64>, DbErr>>()?,
    ))
}

/// Children by name, classes by title (ties by id), so the email reads in a stable order.
fn sort(digest: &mut Digest) {
    digest
        .children
        .sort_by(|a, b| (&a.name, &a.student_id).cmp(&(&b.name, &b.student_id)));
    for child in &mut digest.children {
        child
            .classes
            .sort_by(|a, b| (&a.title, &a.class_id).cmp(&(&b.title, &b.class_id)));
    }
}
