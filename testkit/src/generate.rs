//! A seeded synthetic SDS v2.1 file set (and its "re-sync" variant) at district scale.
//!
//! Shape, for `N` students: one school per ~1,000 students, homerooms of ~25 students with
//! one teacher each (plus the teacher's and students' enrollments), and families: most
//! students are only children, some have one or two siblings in the same family, and each
//! family has 1–4 contacts (mostly 2) shared by all its children. That gives about 2·N
//! unique contact users and about 2.3·N student–contact links. Every file is written in a
//! random (seeded) row order, as exports from real SIS systems rarely come sorted.
//!
//! Memory stays bounded: nothing is kept per row except `u32` permutations and per-family
//! offsets; every attribute of a row is recomputed from a hash of `(seed, kind, index)` when
//! the row is written.

use crate::rng::{SplitMix64, mix};
use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

/// Students per school (about).
pub const STUDENTS_PER_SCHOOL: u64 = 1_000;
/// Students per homeroom class (at most).
pub const CLASS_SIZE: u64 = 25;
/// Prefix of the contact users' `sourcedId` (the mutator and the engine floor use it to
/// tell contacts from students and staff).
pub const CONTACT_PREFIX: &str = "con-";

const TAG_FAMILY: u64 = 1;
pub(crate) const TAG_STUDENT: u64 = 2;
pub(crate) const TAG_CONTACT: u64 = 3;
pub(crate) const TAG_TEACHER: u64 = 4;
pub(crate) const TAG_SCHOOL: u64 = 5;
const TAG_SHUFFLE: u64 = 6;
const TAG_MUTATE: u64 = 7;

/// Per-10,000 shares of the contact channel mix.
const INVALID_PHONE_PER_10K: u64 = 50;
const NO_PHONE_PER_10K: u64 = 300;
const NO_EMAIL_PER_10K: u64 = 300;
/// Share of contacts whose mobile is in the `sms` column rather than `phone`.
const SMS_COLUMN_PER_10K: u64 = 3_000;

/// Given names (a few with accents, as real rosters have).
pub const GIVEN_NAMES: &[&str] = &[
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Amelia",
    "Oliver",
    "Sophia",
    "Elijah",
    "Charlotte",
    "James",
    "Ava",
    "William",
    "Isabella",
    "Benjamin",
    "Mia",
    "Lucas",
    "Evelyn",
    "Henry",
    "Harper",
    "Theodore",
    "Luna",
    "Jack",
    "Camila",
    "Levi",
    "Gianna",
    "Alexander",
    "Elizabeth",
    "Jackson",
    "Eleanor",
    "Mateo",
    "Ella",
    "Daniel",
    "Abigail",
    "Michael",
    "Sofía",
    "Mason",
    "Avery",
    "Sebastián",
    "Scarlett",
    "Ethan",
    "Emily",
    "Logan",
    "Aria",
    "Owen",
    "Penelope",
    "Samuel",
    "Chloe",
    "Jacob",
    "Layla",
    "Asher",
    "Mila",
    "Aiden",
    "Nora",
    "John",
    "Hazel",
    "Joseph",
    "Madison",
    "Wyatt",
    "Ellie",
    "David",
    "Lily",
    "Leo",
    "Nova",
    "Luke",
    "Isla",
    "Julian",
    "Grace",
    "Hudson",
    "Violet",
    "Grayson",
    "Aurora",
    "Zoë",
    "José",
    "Wei",
    "Priya",
    "Mohammed",
    "Fatima",
    "Hiroshi",
    "Aisha",
    "Dmitri",
    "Chiara",
    "Kwame",
    "Ngozi",
    "Siobhan",
    "Raúl",
];

/// Family names.
pub const FAMILY_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Chen",
    "Kim",
    "Patel",
    "Cohen",
    "O'Brien",
    "Müller",
    "Kowalski",
    "Okafor",
    "Yamamoto",
    "Haddad",
    "Ivanova",
    "Rossi",
    "Dubois",
    "Ó Súilleabháin",
    "Mensah",
    "Singh",
];

const EMAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "icloud.com",
    "hotmail.com",
    "aol.com",
    "comcast.net",
    "verizon.net",
];

/// Real NANP area codes (New York City first, then other large cities).
const AREA_CODES: &[u32] = &[
    212, 718, 917, 646, 347, 929, 332, 415, 312, 617, 305, 512, 206, 303, 404, 213, 602, 702,
];

pub(crate) const SCHOOL_KINDS: &[&str] = &[
    "Elementary School",
    "Middle School",
    "High School",
    "Academy",
    "K-8 School",
];

/// What was generated.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GenSummary {
    /// Schools (orgs).
    pub schools: u64,
    /// Teachers (one per class).
    pub teachers: u64,
    /// Homeroom classes.
    pub classes: u64,
    /// Students.
    pub students: u64,
    /// Families (students sharing contacts).
    pub families: u64,
    /// Unique contact users.
    pub contacts: u64,
    /// Student–contact links (`relationships.csv` rows).
    pub links: u64,
    /// `users.csv` rows.
    pub users: u64,
    /// `roles.csv` rows.
    pub roles: u64,
    /// `enrollments.csv` rows.
    pub enrollments: u64,
    /// Contacts given a phone number that is invalid on purpose.
    pub invalid_phones: u64,
    /// Contacts without a phone number.
    pub no_phone: u64,
    /// Contacts without an email.
    pub no_email: u64,
    /// Total size of the files, bytes.
    pub bytes: u64,
}

/// The layout of the district: who is in which school, class and family. Only offsets and
/// counts are stored; names, emails and phones are derived from hashes when written.
pub(crate) struct Plan {
    pub(crate) seed: u64,
    pub(crate) students: u64,
    pub(crate) schools: u64,
    /// Students are placed in schools and classes by `position = index · stride mod N`
    /// (`stride` coprime with N), so siblings (adjacent indexes) are spread over schools.
    stride: u64,
    /// First global class index of each school (`schools + 1` entries).
    pub(crate) class_start: Vec<u32>,
    /// First student / contact / link index of each family (`families + 1` entries each).
    pub(crate) family_students: Vec<u32>,
    pub(crate) family_contacts: Vec<u32>,
    pub(crate) family_links: Vec<u32>,
}

impl Plan {
    pub(crate) fn new(students: u64, seed: u64) -> Result<Self> {
        if students == 0 {
            bail!("the benchmark needs at least one student");
        }
        if students > 100_000_000 {
            bail!("{students} students is more than this generator supports (100,000,000)");
        }
        let schools = students.div_ceil(STUDENTS_PER_SCHOOL).max(1);
        let mut stride = (students as f64 * 0.618_033_988_7) as u64 | 1;
        while gcd(stride, students) != 1 {
            stride += 1;
        }
        let mut plan = Plan {
            seed,
            students,
            schools,
            stride: stride % students.max(1),
            class_start: Vec::with_capacity(schools as usize + 1),
            family_students: vec![0],
            family_contacts: vec![0],
            family_links: vec![0],
        };
        if plan.stride == 0 {
            plan.stride = 1;
        }
        let mut classes = 0u64;
        for school in 0..schools {
            plan.class_start.push(classes as u32);
            classes += plan.school_size(school).div_ceil(CLASS_SIZE).max(1);
        }
        plan.class_start.push(classes as u32);
        let mut rng = SplitMix64::new(seed ^ mix(seed, TAG_FAMILY, 0));
        let (mut s, mut c, mut l) = (0u64, 0u64, 0u64);
        while s < students {
            let children = match rng.below(100) {
                0..88 => 1,
                88..98 => 2,
                _ => 3,
            }
            .min(students - s);
            let contacts = match rng.below(100) {
                0..10 => 1,
                10..70 => 2,
                70..90 => 3,
                _ => 4,
            };
            s += children;
            c += contacts;
            l += children * contacts;
            if l > u64::from(u32::MAX) {
                bail!("too many rows for this generator");
            }
            plan.family_students.push(s as u32);
            plan.family_contacts.push(c as u32);
            plan.family_links.push(l as u32);
        }
        Ok(plan)
    }

    pub(crate) fn families(&self) -> u64 {
        self.family_students.len() as u64 - 1
    }
    pub(crate) fn contacts(&self) -> u64 {
        u64::from(self.family_contacts[self.family_contacts.len() - 1])
    }
    pub(crate) fn links(&self) -> u64 {
        u64::from(self.family_links[self.family_links.len() - 1])
    }
    pub(crate) fn classes(&self) -> u64 {
        u64::from(self.class_start[self.class_start.len() - 1])
    }

    /// First roster position of `school`: ceil(school · N / S).
    fn school_first(&self, school: u64) -> u64 {
        (school * self.students).div_ceil(self.schools)
    }
    fn school_size(&self, school: u64) -> u64 {
        self.school_first(school + 1) - self.school_first(school)
    }

    /// `(school, global class)` of student `i`.
    pub(crate) fn placement(&self, student: u64) -> (u64, u64) {
        let position =
            ((u128::from(student) * u128::from(self.stride)) % u128::from(self.students)) as u64;
        let school = position * self.schools / self.students;
        let size = self.school_size(school).max(1);
        let local = position - self.school_first(school);
        let classes = size.div_ceil(CLASS_SIZE).max(1);
        let class = u64::from(self.class_start[school as usize]) + local * classes / size;
        (school, class)
    }

    pub(crate) fn school_of_class(&self, class: u64) -> u64 {
        (self
            .class_start
            .partition_point(|&start| u64::from(start) <= class)
            - 1) as u64
    }

    pub(crate) fn family_of(starts: &[u32], index: u64) -> usize {
        starts.partition_point(|&start| u64::from(start) <= index) - 1
    }

    pub(crate) fn family_name(&self, family: usize) -> &'static str {
        pick(FAMILY_NAMES, mix(self.seed, TAG_FAMILY, family as u64))
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

pub(crate) fn pick<'a>(list: &[&'a str], hash: u64) -> &'a str {
    list[(hash % list.len() as u64) as usize]
}

/// Writes a full SDS v2.1 file set for `students` students into `dir` (created if missing).
pub fn generate(dir: &Path, students: u64, seed: u64) -> Result<GenSummary> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let plan = Plan::new(students, seed)?;
    let mut summary = GenSummary {
        schools: plan.schools,
        teachers: plan.classes(),
        classes: plan.classes(),
        students,
        families: plan.families(),
        contacts: plan.contacts(),
        links: plan.links(),
        ..GenSummary::default()
    };
    let mut shuffler = SplitMix64::new(mix(seed, TAG_SHUFFLE, 0));

    // orgs.csv
    let mut out = CsvOut::create(dir, "orgs.csv", &["sourcedId", "name", "type"])?;
    for school in shuffled(plan.schools, &mut shuffler) {
        let hash = mix(seed, TAG_SCHOOL, school);
        let name = format!(
            "{} {}",
            pick(FAMILY_NAMES, hash),
            pick(SCHOOL_KINDS, hash >> 20)
        );
        out.row(&[&school_id(school), &name, "school"])?;
    }
    out.finish()?;

    // users.csv: teachers, then students, then contacts, all shuffled together.
    let teachers = plan.classes();
    let contacts = plan.contacts();
    let users = teachers + students + contacts;
    summary.users = users;
    let mut out = CsvOut::create(
        dir,
        "users.csv",
        &[
            "sourcedId",
            "username",
            "givenName",
            "familyName",
            "email",
            "phone",
            "sms",
        ],
    )?;
    let mut contact = ContactRow::default();
    for user in shuffled(users, &mut shuffler) {
        if user < teachers {
            let hash = mix(seed, TAG_TEACHER, user);
            let given = pick(GIVEN_NAMES, hash);
            let family = pick(FAMILY_NAMES, hash >> 24);
            let email = format!(
                "{}.{}{}@schools.example.org",
                ascii_lower(given),
                ascii_lower(family),
                user
            );
            out.row(&[&teacher_id(user), &email, given, family, &email, "", ""])?;
        } else if user < teachers + students {
            let student = user - teachers;
            let family = Plan::family_of(&plan.family_students, student);
            let given = pick(GIVEN_NAMES, mix(seed, TAG_STUDENT, student));
            let username = format!("s{student}@students.example.org");
            out.row(&[
                &student_id(student),
                &username,
                given,
                plan.family_name(family),
                "",
                "",
                "",
            ])?;
        } else {
            let index = user - teachers - students;
            contact.fill(&plan, index);
            summary.invalid_phones += u64::from(contact.invalid_phone);
            summary.no_phone += u64::from(contact.phone.is_empty());
            summary.no_email += u64::from(contact.email.is_empty());
            let (phone, sms) = if contact.sms_column {
                ("", contact.phone.as_str())
            } else {
                (contact.phone.as_str(), "")
            };
            out.row(&[
                &contact.id,
                &contact.email,
                contact.given,
                contact.family,
                &contact.email,
                phone,
                sms,
            ])?;
        }
    }
    out.finish()?;

    // roles.csv: one role per student and per teacher (contacts have none, as in real exports).
    summary.roles = students + teachers;
    let mut out = CsvOut::create(dir, "roles.csv", &["userSourcedId", "orgSourcedId", "role"])?;
    for role in shuffled(students + teachers, &mut shuffler) {
        if role < students {
            let (school, _) = plan.placement(role);
            out.row(&[&student_id(role), &school_id(school), "student"])?;
        } else {
            let teacher = role - students;
            out.row(&[
                &teacher_id(teacher),
                &school_id(plan.school_of_class(teacher)),
                "teacher",
            ])?;
        }
    }
    out.finish()?;

    // classes.csv
    let mut out = CsvOut::create(dir, "classes.csv", &["sourcedId", "orgSourcedId", "title"])?;
    for class in shuffled(plan.classes(), &mut shuffler) {
        let school = plan.school_of_class(class);
        let title = format!(
            "Homeroom {}",
            class - u64::from(plan.class_start[school as usize]) + 1
        );
        out.row(&[&class_id(class), &school_id(school), &title])?;
    }
    out.finish()?;

    // enrollments.csv: every student in their homeroom, every teacher in theirs.
    summary.enrollments = students + teachers;
    let mut out = CsvOut::create(
        dir,
        "enrollments.csv",
        &["classSourcedId", "userSourcedId", "role"],
    )?;
    for enrollment in shuffled(students + teachers, &mut shuffler) {
        if enrollment < students {
            let (_, class) = plan.placement(enrollment);
            out.row(&[&class_id(class), &student_id(enrollment), "student"])?;
        } else {
            let teacher = enrollment - students;
            out.row(&[&class_id(teacher), &teacher_id(teacher), "teacher"])?;
        }
    }
    out.finish()?;

    // relationships.csv: every child of a family with every contact of the family.
    let mut out = CsvOut::create(
        dir,
        "relationships.csv",
        &[
            "userSourcedId",
            "relationshipUserSourcedId",
            "relationshipRole",
        ],
    )?;
    for link in shuffled(plan.links(), &mut shuffler) {
        let family = Plan::family_of(&plan.family_links, link);
        let offset = link - u64::from(plan.family_links[family]);
        let first_contact = u64::from(plan.family_contacts[family]);
        let contacts_in_family = u64::from(plan.family_contacts[family + 1]) - first_contact;
        let student = u64::from(plan.family_students[family]) + offset / contacts_in_family;
        let contact_offset = offset % contacts_in_family;
        let contact = first_contact + contact_offset;
        let role = relationship_role(contact_offset, mix(seed, TAG_CONTACT, contact) >> 48);
        out.row(&[&student_id(student), &contact_id(contact), role])?;
    }
    out.finish()?;

    summary.bytes = dir_bytes(dir)?;
    sync_to_disk(dir)?;
    Ok(summary)
}

/// `0..n` in a seeded random order.
fn shuffled(n: u64, rng: &mut SplitMix64) -> impl Iterator<Item = u64> {
    // u32 keeps the largest permutation (users.csv, ~3M rows per 1M students) at ~12 MB.
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    let mut items: Vec<u32> = (0..n).collect();
    rng.shuffle(&mut items);
    items.into_iter().map(u64::from)
}

/// `sourcedId` of school `i`.
pub fn school_id(i: u64) -> String {
    format!("sch-{i:05}")
}
/// `sourcedId` of teacher `i`.
pub fn teacher_id(i: u64) -> String {
    format!("tch-{i:06}")
}
/// `sourcedId` of class `i`.
pub fn class_id(i: u64) -> String {
    format!("cls-{i:06}")
}
/// `sourcedId` of student `i`.
pub fn student_id(i: u64) -> String {
    format!("stu-{i:07}")
}
/// `sourcedId` of contact `i`.
pub fn contact_id(i: u64) -> String {
    format!("{CONTACT_PREFIX}{i:07}")
}

/// The role of the `offset`-th contact of a family (the first two are mostly parents).
pub(crate) fn relationship_role(offset: u64, hash: u64) -> &'static str {
    let roll = hash % 100;
    match offset {
        0 => {
            if roll < 95 {
                "parent"
            } else {
                "guardian"
            }
        }
        1 => {
            if roll < 85 {
                "parent"
            } else {
                "guardian"
            }
        }
        2 => match roll {
            0..50 => "relative",
            50..80 => "guardian",
            _ => "other",
        },
        _ => match roll {
            0..40 => "relative",
            40..60 => "aide",
            60..80 => "doctor",
            _ => "other",
        },
    }
}

/// One contact's `users.csv` values, reusing its buffers from row to row.
#[derive(Default)]
pub(crate) struct ContactRow {
    pub(crate) id: String,
    pub(crate) given: &'static str,
    pub(crate) family: &'static str,
    pub(crate) email: String,
    pub(crate) phone: String,
    pub(crate) sms_column: bool,
    pub(crate) invalid_phone: bool,
}

impl ContactRow {
    pub(crate) fn fill(&mut self, plan: &Plan, index: u64) {
        let hash = mix(plan.seed, TAG_CONTACT, index);
        let family = Plan::family_of(&plan.family_contacts, index);
        let offset = index - u64::from(plan.family_contacts[family]);
        self.id.clear();
        let _ = write!(self.id, "{CONTACT_PREFIX}{index:07}");
        self.given = pick(GIVEN_NAMES, hash);
        // Parents mostly share the family name; others often have their own.
        let own_name = if offset < 2 {
            hash % 100 < 20
        } else {
            hash % 100 < 60
        };
        self.family = if own_name {
            pick(FAMILY_NAMES, hash >> 8)
        } else {
            plan.family_name(family)
        };
        let mut rng = SplitMix64::new(hash);
        self.email.clear();
        if !rng.chance(NO_EMAIL_PER_10K) {
            write_email(
                &mut self.email,
                self.given,
                self.family,
                index,
                rng.next_u64(),
            );
        }
        self.phone.clear();
        self.invalid_phone = false;
        if rng.chance(INVALID_PHONE_PER_10K) {
            self.invalid_phone = true;
            write_invalid_phone(&mut self.phone, rng.next_u64());
        } else if !rng.chance(NO_PHONE_PER_10K) {
            write_phone(&mut self.phone, rng.next_u64());
        }
        self.sms_column = rng.chance(SMS_COLUMN_PER_10K);
    }
}

/// Lower-case ASCII letters of `name` (for email local parts).
pub(crate) fn ascii_lower(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A plausible personal email, e.g. `maria.garcia412@gmail.com`.
pub fn write_email(out: &mut String, given: &str, family: &str, index: u64, hash: u64) {
    let _ = write!(
        out,
        "{}.{}{}@{}",
        ascii_lower(given),
        ascii_lower(family),
        index % 997,
        pick(EMAIL_DOMAINS, hash)
    );
}

/// A valid US mobile-style number in one of several national and international formats.
pub fn write_phone(out: &mut String, hash: u64) {
    let area = AREA_CODES[(hash % AREA_CODES.len() as u64) as usize];
    let mut exchange = 200 + (hash >> 8) % 800;
    if exchange % 100 == 11 {
        exchange += 1; // N11 codes are service numbers
    }
    if exchange == 555 {
        exchange = 556; // 555 is mostly reserved and partly invalid
    }
    let line = (hash >> 20) % 10_000;
    let _ = match (hash >> 40) % 6 {
        0 => write!(out, "({area}) {exchange}-{line:04}"),
        1 => write!(out, "{area}-{exchange}-{line:04}"),
        2 => write!(out, "{area}.{exchange}.{line:04}"),
        3 => write!(out, "+1 {area} {exchange} {line:04}"),
        4 => write!(out, "{area}{exchange}{line:04}"),
        _ => write!(out, "1-{area}-{exchange}-{line:04}"),
    };
}

/// A phone number that cannot be valid (too short, or an impossible area code).
fn write_invalid_phone(out: &mut String, hash: u64) {
    let line = (hash >> 8) % 100;
    let _ = match hash % 3 {
        0 => write!(out, "555-01{line:02}"),
        1 => write!(out, "(212) 555-{line:02}"),
        _ => write!(out, "123-456-78{line:02}"),
    };
}

/// A CSV file being written.
struct CsvOut {
    writer: csv::Writer<BufWriter<File>>,
    name: &'static str,
}

impl CsvOut {
    fn create(dir: &Path, name: &'static str, header: &[&str]) -> Result<Self> {
        let path = dir.join(name);
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = Self {
            writer: csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, file)),
            name,
        };
        out.row(header)?;
        Ok(out)
    }

    fn row(&mut self, fields: &[&str]) -> Result<()> {
        self.writer
            .write_record(fields)
            .with_context(|| format!("cannot write {}", self.name))
    }

    fn record(&mut self, record: &csv::StringRecord) -> Result<()> {
        self.writer
            .write_record(record)
            .with_context(|| format!("cannot write {}", self.name))
    }

    fn finish(mut self) -> Result<()> {
        self.writer
            .flush()
            .with_context(|| format!("cannot write {}", self.name))
    }
}

/// Writes the files of `dir` through to the disk, so their write-back does not compete with
/// whatever is measured next (hundreds of megabytes at district size).
fn sync_to_disk(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("cannot read {}", dir.display()))?
            .path();
        File::open(&path)
            .and_then(|file| file.sync_all())
            .with_context(|| format!("cannot sync {}", path.display()))?;
    }
    Ok(())
}

fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        total += entry.metadata().map(|m| m.len()).unwrap_or(0);
    }
    Ok(total)
}

/// What the mutator changed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MutateSummary {
    /// Contact rows read.
    pub contacts: u64,
    /// Contacts changed (one field each).
    pub contacts_changed: u64,
    /// … of which the email changed.
    pub emails_changed: u64,
    /// … of which the phone changed.
    pub phones_changed: u64,
    /// … of which the given name changed.
    pub names_changed: u64,
    /// Relationship rows read.
    pub links: u64,
    /// Relationship rows left out.
    pub links_removed: u64,
    /// Total size of the files, bytes.
    pub bytes: u64,
}

/// Writes the "re-sync" snapshot into `to` from the set in `from`: 1% of the contacts get
/// one changed field (email, phone or given name), 0.5% of `relationships.csv` rows are
/// left out, every other row and file is copied unchanged (same order).
pub fn mutate(from: &Path, to: &Path, seed: u64) -> Result<MutateSummary> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let mut rng = SplitMix64::new(mix(seed, TAG_MUTATE, 0));
    let mut summary = MutateSummary::default();
    for name in ["orgs.csv", "roles.csv", "classes.csv", "enrollments.csv"] {
        std::fs::copy(from.join(name), to.join(name))
            .with_context(|| format!("cannot copy {name} into {}", to.display()))?;
    }

    let (mut reader, header) = open_csv(from, "users.csv")?;
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("users.csv has no '{name}' column"))
    };
    let (id, given, family) = (
        column("sourcedId")?,
        column("givenName")?,
        column("familyName")?,
    );
    let (email, phone, sms) = (column("email")?, column("phone")?, column("sms")?);
    let header_fields: Vec<&str> = header.iter().collect();
    let mut out = CsvOut::create(to, "users.csv", &header_fields)?;
    let mut record = csv::StringRecord::new();
    let mut buffer = String::new();
    while reader
        .read_record(&mut record)
        .context("cannot read users.csv")?
    {
        if !record
            .get(id)
            .unwrap_or_default()
            .starts_with(CONTACT_PREFIX)
        {
            out.record(&record)?;
            continue;
        }
        summary.contacts += 1;
        if !rng.chance(100) {
            out.record(&record)?;
            continue;
        }
        summary.contacts_changed += 1;
        let mut fields: Vec<String> = record.iter().map(str::to_string).collect();
        match rng.below(3) {
            0 => {
                summary.emails_changed += 1;
                let old = fields[email].clone();
                loop {
                    buffer.clear();
                    write_email(
                        &mut buffer,
                        &fields[given],
                        &fields[family],
                        rng.below(1_000_000),
                        rng.next_u64(),
                    );
                    if buffer != old {
                        break;
                    }
                }
                fields[email] = buffer.clone();
            }
            1 => {
                summary.phones_changed += 1;
                let target = if !fields[sms].is_empty() { sms } else { phone };
                fields[target] = different_phone(&fields[target], &mut rng);
            }
            _ => {
                summary.names_changed += 1;
                let old = fields[given].clone();
                let mut new = pick(GIVEN_NAMES, rng.next_u64());
                while new == old {
                    new = pick(GIVEN_NAMES, rng.next_u64());
                }
                fields[given] = new.to_string();
            }
        }
        out.row(&fields.iter().map(String::as_str).collect::<Vec<_>>())?;
    }
    out.finish()?;

    let (mut reader, header) = open_csv(from, "relationships.csv")?;
    let header_fields: Vec<&str> = header.iter().collect();
    let mut out = CsvOut::create(to, "relationships.csv", &header_fields)?;
    while reader
        .read_record(&mut record)
        .context("cannot read relationships.csv")?
    {
        summary.links += 1;
        if rng.chance(50) {
            summary.links_removed += 1;
        } else {
            out.record(&record)?;
        }
    }
    out.finish()?;
    summary.bytes = dir_bytes(to)?;
    sync_to_disk(to)?;
    Ok(summary)
}

/// The last ten digits of a phone number (the national number for NANP).
fn national_digits(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len().saturating_sub(10)..].iter().collect()
}

/// A valid phone number whose national number differs from `old` (which may be blank).
fn different_phone(old: &str, rng: &mut SplitMix64) -> String {
    let old = national_digits(old);
    let mut new = String::new();
    // Two draws colliding is ~1 in 10^9; the bound only guards against a bug looping forever.
    for _ in 0..16 {
        new.clear();
        write_phone(&mut new, rng.next_u64());
        if national_digits(&new) != old {
            break;
        }
    }
    new
}

fn open_csv(dir: &Path, name: &str) -> Result<(csv::Reader<File>, csv::StringRecord)> {
    let path = dir.join(name);
    let mut reader =
        csv::Reader::from_path(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let header = reader
        .headers()
        .with_context(|| format!("cannot read the header of {}", path.display()))?
        .clone();
    Ok((reader, header))
}

#[cfg(test)]
mod tests {
    use super::*;
    use parent_connection::domain::{PhoneE164, Region};

    #[test]
    fn generated_phones_are_valid_and_invalid_ones_are_not() {
        let region = Region::default();
        let mut rng = SplitMix64::new(1);
        let mut phone = String::new();
        for _ in 0..20_000 {
            phone.clear();
            write_phone(&mut phone, rng.next_u64());
            assert!(
                PhoneE164::parse(&phone, region).is_ok(),
                "{phone} should be valid"
            );
        }
        for hash in 0..300 {
            phone.clear();
            write_invalid_phone(&mut phone, hash);
            assert!(
                PhoneE164::parse(&phone, region).is_err(),
                "{phone} should be invalid"
            );
        }
    }

    #[test]
    fn changed_phones_differ_even_from_blank_ones() {
        let mut rng = SplitMix64::new(5);
        for old in ["", "(212) 734-5678", "+1 212 734 5678", "555-0101"] {
            let new = different_phone(old, &mut rng);
            assert!(PhoneE164::parse(&new, Region::default()).is_ok(), "{new}");
            assert_ne!(national_digits(&new), national_digits(old));
        }
    }

    #[test]
    fn plan_has_the_expected_shape() {
        let plan = Plan::new(10_000, 3).unwrap();
        assert_eq!(plan.schools, 10);
        let contacts = plan.contacts() as f64 / 10_000.0;
        let links = plan.links() as f64 / 10_000.0;
        assert!((1.8..2.3).contains(&contacts), "{contacts}");
        assert!((2.1..2.5).contains(&links), "{links}");
        let mut per_class = vec![0u64; plan.classes() as usize];
        for student in 0..10_000 {
            let (school, class) = plan.placement(student);
            assert_eq!(plan.school_of_class(class), school);
            per_class[class as usize] += 1;
        }
        assert!(
            per_class.iter().all(|&n| (20..=25).contains(&n)),
            "{per_class:?}"
        );
    }

    #[test]
    fn generates_and_mutates_a_small_set() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first");
        let second = dir.path().join("second");
        let summary = generate(&first, 2_000, 9).unwrap();
        assert_eq!(summary.students, 2_000);
        let users = std::fs::read_to_string(first.join("users.csv")).unwrap();
        assert!(users.starts_with("sourcedId,username,givenName,familyName,email,phone,sms\n"));
        assert_eq!(users.lines().count() as u64, summary.users + 1);
        let again = dir.path().join("again");
        generate(&again, 2_000, 9).unwrap();
        assert_eq!(
            std::fs::read(first.join("relationships.csv")).unwrap(),
            std::fs::read(again.join("relationships.csv")).unwrap()
        );
        let changes = mutate(&first, &second, 9).unwrap();
        assert_eq!(changes.contacts, summary.contacts);
        assert_eq!(changes.links, summary.links);
        assert!(changes.contacts_changed > 0 && changes.links_removed > 0);
        let kept = std::fs::read_to_string(second.join("relationships.csv"))
            .unwrap()
            .lines()
            .count() as u64
            - 1;
        assert_eq!(kept, summary.links - changes.links_removed);
    }
}
