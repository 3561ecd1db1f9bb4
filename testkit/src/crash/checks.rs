//! Per operation: the template it starts from, one uninterrupted reference run, and a trial
//! (start, kill, check what is left, finish, check again).

use super::db::{self, Databases, exec, int, ints, texts};
use super::pgserver::PrivateServer;
use super::product::{self, Product};
use super::{Operation, Options, Prepared, Trial};
use crate::generate;
use crate::smtp::Sink;
use anyhow::{Context, Result, bail, ensure};
use sea_orm::DatabaseConnection;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::process::Child;

/// The tenant every harness database has.
const TENANT: &str = "crash";

/// The digest week (its windows hold the seeded assignments).
const WEEK: &str = "2026-W48";

/// What a trial's checks compare with.
#[derive(Debug, Clone)]
pub enum Reference {
    /// The contacts and links before and after the re-sync.
    Import {
        /// Snapshot folder of the re-sync.
        dir: String,
        /// Before the re-sync.
        before: Fingerprint,
        /// After it.
        after: Fingerprint,
    },
    /// The pending requests, with the given name each sets, and an admin token.
    Approval {
        /// `(request id, contact id, proposed given name)`.
        requests: Vec<(String, i64, String)>,
        /// A global admin's bearer token.
        admin: String,
    },
    /// The guardians a whole digest run reaches, in contact order.
    Digest {
        /// Contact ids.
        contacts: Vec<i64>,
    },
    /// The digests to send.
    Dispatch {
        /// Their recipients (one digest each).
        messages: Vec<String>,
    },
}

/// The import-visible state: every contact's values and every link, hashed, and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    contacts: u64,
    links: u64,
    contact_hash: u64,
    link_hash: u64,
}

fn fnv(rows: &[String]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in rows.iter().flat_map(|r| r.bytes().chain([b'\n'])) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
    }
    hash
}

async fn fingerprint(conn: &DatabaseConnection) -> Result<Fingerprint> {
    let contacts = texts(
        conn,
        "SELECT source_key || '|' || COALESCE(given_name, '') || '|' || COALESCE(family_name, '') || '|' || COALESCE(email, '') || '|' || COALESCE(mobile_phone, '') AS t FROM contacts ORDER BY source_key",
    )
    .await?;
    let links = texts(
        conn,
        "SELECT CAST(student_id AS TEXT) || '|' || CAST(contact_id AS TEXT) || '|' || COALESCE(relationship, '') || '|' || status AS t FROM student_contacts ORDER BY student_id, contact_id",
    )
    .await?;
    Ok(Fingerprint {
        contacts: contacts.len() as u64,
        links: links.len() as u64,
        contact_hash: fnv(&contacts),
        link_hash: fnv(&links),
    })
}

/// Applied import runs.
async fn applied_runs(conn: &DatabaseConnection) -> Result<i64> {
    int(
        conn,
        "SELECT COUNT(*) AS n FROM sync_runs WHERE status = 'applied'",
    )
    .await
}

/// A fresh database `name` with the schema and the tenant; its URL and a product on it.
async fn base(options: &Options, dbs: &Databases, name: &str) -> Result<(String, Product)> {
    let url = dbs.create(name).await?;
    let product = Product::new(options.product.clone(), &url, "smtp://127.0.0.1:9?tls=none");
    product.run(&["migrate"]).await?;
    product
        .run(&[
            "tenant",
            "create",
            TENANT,
            "--name",
            "Crash District",
            "--region",
            "US",
        ])
        .await?;
    Ok((url, product))
}

/// Runs a whole command and times it.
async fn timed(product: &Product, args: &[&str]) -> Result<Duration> {
    let started = Instant::now();
    product.run(args).await?;
    Ok(started.elapsed())
}

/// Builds the template of `operation` and measures a reference run on a copy of it.
pub async fn prepare(
    options: &Options,
    dbs: &Databases,
    operation: Operation,
    template: &str,
) -> Result<(Duration, Reference)> {
    match operation {
        Operation::Import => prepare_import(options, dbs, template).await,
        Operation::Approval => prepare_approval(options, dbs, template).await,
        Operation::Digest => prepare_digest(options, dbs, template).await,
        Operation::Dispatch => prepare_dispatch(options, dbs, template).await,
    }
}

/// Runs one trial of `prepared` on the fresh copy at `url`.
pub async fn run_trial(
    product: &Product,
    url: &str,
    sink: &Sink,
    prepared: &Prepared,
    server: Option<&PrivateServer>,
    trial: &mut Trial,
) -> Result<()> {
    match &prepared.reference {
        Reference::Import { dir, before, after } => {
            import_trial(product, url, dir, (before, after), server, trial).await
        }
        Reference::Approval { requests, admin } => {
            approval_trial(product, url, requests, admin, server, trial).await
        }
        Reference::Digest { contacts } => digest_trial(product, url, contacts, server, trial).await,
        Reference::Dispatch { messages } => {
            dispatch_trial(product, url, sink, messages, server, trial).await
        }
    }
}

/// Starts `args` and kills it after `trial.delay` ([`kill_now`]).
async fn kill_after(
    product: &Product,
    args: &[&str],
    server: Option<&PrivateServer>,
    trial: &mut Trial,
) -> Result<()> {
    let mut child = product.spawn(args)?;
    tokio::time::sleep(trial.delay).await;
    trial.killed_running = kill_now(&mut child, server).await?;
    Ok(())
}

/// SIGKILLs `child`; with `server`, crashes the database server instead, lets `child` fail
/// on its own for a moment (then SIGKILLs it) and starts the server again. Whether `child`
/// was still working.
async fn kill_now(child: &mut Child, server: Option<&PrivateServer>) -> Result<bool> {
    let Some(server) = server else {
        return product::kill(child).await;
    };
    let running = child.try_wait()?.is_none();
    server.crash()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait()?.is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    product::kill(child).await?;
    server.up()?;
    Ok(running)
}

/// Opens the killed database and checks its integrity first.
async fn open_checked(url: &str) -> Result<DatabaseConnection> {
    let conn = db::connect(url).await?;
    let integrity = db::integrity(&conn).await?;
    ensure!(integrity == "ok", "integrity check: {integrity}");
    Ok(conn)
}

// ---- import ----

async fn prepare_import(
    options: &Options,
    dbs: &Databases,
    template: &str,
) -> Result<(Duration, Reference)> {
    let first = options.work.join("snapshot-first");
    let resync = options.work.join("snapshot-resync");
    let (students, seed) = (options.scale.students, options.seed);
    let (a, b) = (first.clone(), resync.clone());
    tokio::task::spawn_blocking(move || -> Result<()> {
        generate::generate(&a, students, seed)?;
        generate::mutate(&a, &b, seed)?;
        Ok(())
    })
    .await??;
    let (url, product) = base(options, dbs, template).await?;
    import(&product, &first.display().to_string()).await?;
    let conn = db::connect(&url).await?;
    let before = fingerprint(&conn).await?;
    conn.close().await?;
    dbs.seal(&url).await?;
    let dir = resync.display().to_string();
    let reference_url = dbs.copy(template, "import_ref").await?;
    let product = Product::new(
        options.product.clone(),
        &reference_url,
        "smtp://127.0.0.1:9?tls=none",
    );
    let window = timed(&product, &import_args(&dir)).await?;
    let conn = db::connect(&reference_url).await?;
    let after = fingerprint(&conn).await?;
    conn.close().await?;
    dbs.drop("import_ref").await?;
    ensure!(before != after, "the re-sync snapshot changes nothing");
    Ok((window, Reference::Import { dir, before, after }))
}

fn import_args(dir: &str) -> Vec<&str> {
    vec![
        "import", "--tenant", TENANT, "--format", "sds-v2.1", "--force", dir,
    ]
}

async fn import(product: &Product, dir: &str) -> Result<()> {
    product.run(&import_args(dir)).await.map(|_| ())
}

async fn import_trial(
    product: &Product,
    url: &str,
    dir: &str,
    (before, after): (&Fingerprint, &Fingerprint),
    server: Option<&PrivateServer>,
    trial: &mut Trial,
) -> Result<()> {
    kill_after(product, &import_args(dir), server, trial).await?;
    let conn = open_checked(url).await?;
    let (state, runs) = (fingerprint(&conn).await?, applied_runs(&conn).await?);
    conn.close().await?;
    trial.state = match (state == *before, state == *after, runs) {
        (true, _, 1) => "before".into(),
        (_, true, 2) => "after".into(),
        _ => bail!(
            "the import left neither the before nor the after set ({runs} applied runs): {state:?}"
        ),
    };
    import(product, dir).await?;
    let conn = db::connect(url).await?;
    let (state, runs_now) = (fingerprint(&conn).await?, applied_runs(&conn).await?);
    conn.close().await?;
    ensure!(
        state == *after,
        "the rerun did not reach the after set: {state:?}"
    );
    ensure!(
        runs_now == runs + 1,
        "the rerun recorded {} runs",
        runs_now - runs
    );
    Ok(())
}

// ---- approval ----

/// `(teacher source id, student source id, contact id)` of active parent/guardian links
/// within each teacher's classes, one per contact.
const REACHABLE: &str = "SELECT st.source_id || '|' || s.source_id || '|' || CAST(MIN(sc.contact_id) AS TEXT) AS t \
     FROM enrollments et JOIN staff st ON st.id = et.person_id \
     JOIN enrollments es ON es.class_id = et.class_id AND es.role = 'student' AND es.status = 'active' \
     JOIN students s ON s.id = es.person_id AND s.status = 'active' \
     JOIN student_contacts sc ON sc.student_id = s.id AND sc.status = 'active' AND sc.relationship IN ('parent', 'guardian') \
     WHERE et.role = 'teacher' AND et.status = 'active' \
     GROUP BY st.source_id, s.source_id ORDER BY 1";

async fn token(product: &Product, user: &str, role: &str) -> Result<String> {
    let out = product
        .run(&[
            "token", "--tenant", TENANT, "--user", user, "--role", role, "--ttl", "7d",
        ])
        .await?;
    Ok(out.trim().to_string())
}

async fn prepare_approval(
    options: &Options,
    dbs: &Databases,
    template: &str,
) -> Result<(Duration, Reference)> {
    let snapshot = options.work.join("snapshot-approval");
    let (students, seed) = (options.scale.students.min(400), options.seed);
    let dir = snapshot.clone();
    tokio::task::spawn_blocking(move || generate::generate(&dir, students, seed)).await??;
    let (url, product) = base(options, dbs, template).await?;
    import(&product, &snapshot.display().to_string()).await?;
    let conn = db::connect(&url).await?;
    let reachable = texts(&conn, REACHABLE).await?;
    conn.close().await?;
    let admin = token(&product, "crash-admin", "global-admin").await?;
    let mut server = product.serve().await?;
    let mut requests = Vec::new();
    let mut seen = HashSet::new();
    for line in reachable {
        if requests.len() as u64 >= options.scale.requests {
            break;
        }
        let parts: Vec<&str> = line.split('|').collect();
        let [teacher, student, contact] = parts[..] else {
            continue;
        };
        let contact: i64 = contact.parse()?;
        if !seen.insert(contact) {
            continue;
        }
        let bearer = token(&product, teacher, "teacher").await?;
        let given = format!("Crash{}", requests.len());
        let body = format!(
            r#"{{"action":"update","contactId":"{contact}","contact":{{"givenName":"{given}"}}}}"#
        );
        let path = format!("/api/v1/students/{student}/contact-requests");
        let (status, answer) =
            product::http(server.port, "POST", &path, Some(&bearer), &body).await?;
        ensure!(
            status == 201,
            "submitting a request answered {status}: {answer}"
        );
        let item: serde_json::Value = serde_json::from_str(&answer)?;
        let id = match &item["id"] {
            serde_json::Value::String(id) => id.clone(),
            other => other.to_string(),
        };
        requests.push((id, contact, given));
    }
    product::kill(&mut server.child).await?;
    ensure!(
        !requests.is_empty(),
        "no teacher reaches a guardian in the generated district"
    );
    dbs.seal(&url).await?;
    let reference_url = dbs.copy(template, "approval_ref").await?;
    let product = Product::new(
        options.product.clone(),
        &reference_url,
        "smtp://127.0.0.1:9?tls=none",
    );
    let mut server = product.serve().await?;
    let started = Instant::now();
    approve_all(server.port, &requests, &admin).await?;
    let window = started.elapsed();
    product::kill(&mut server.child).await?;
    dbs.drop("approval_ref").await?;
    Ok((window, Reference::Approval { requests, admin }))
}

/// Approves each request in turn; every answer must be 200.
async fn approve_all(port: u16, requests: &[(String, i64, String)], admin: &str) -> Result<()> {
    for (id, _, _) in requests {
        let path = format!("/api/v1/contact-requests/{id}/approve");
        let (status, answer) = product::http(port, "POST", &path, Some(admin), "{}").await?;
        ensure!(status == 200, "approving {id} answered {status}: {answer}");
    }
    Ok(())
}

/// Requests approved with their change applied; an error for one half done.
async fn decided(url: &str, requests: &[(String, i64, String)]) -> Result<Vec<bool>> {
    let conn = open_checked(url).await?;
    let mut out = Vec::new();
    for (id, contact, given) in requests {
        let status = texts(
            &conn,
            &format!(
                "SELECT status AS t FROM contact_requests WHERE id = {}",
                id.parse::<i64>()?
            ),
        )
        .await?;
        let name = texts(
            &conn,
            &format!("SELECT COALESCE(given_name, '') AS t FROM contacts WHERE id = {contact}"),
        )
        .await?;
        let (approved, changed) = (
            status.first().map(String::as_str) == Some("approved"),
            name.first() == Some(given),
        );
        ensure!(
            approved == changed,
            "request {id}: status {status:?} but the contact's given name is {name:?}"
        );
        out.push(approved);
    }
    conn.close().await?;
    Ok(out)
}

async fn approval_trial(
    product: &Product,
    url: &str,
    requests: &[(String, i64, String)],
    admin: &str,
    db_server: Option<&PrivateServer>,
    trial: &mut Trial,
) -> Result<()> {
    let mut server = product.serve().await?;
    let (port, list, token) = (server.port, requests.to_vec(), admin.to_string());
    let approving = tokio::spawn(async move { approve_all(port, &list, &token).await });
    tokio::time::sleep(trial.delay).await;
    trial.killed_running = !approving.is_finished();
    kill_now(&mut server.child, db_server).await?;
    let approved = approving.await?;
    if !trial.killed_running {
        approved.context("the approvals failed before the kill")?;
    }
    let done = decided(url, requests).await?;
    let approved = done.iter().filter(|d| **d).count();
    trial.state = match approved {
        0 => "before".into(),
        n if n == requests.len() => "after".into(),
        n => format!("partial {n}/{}", requests.len()),
    };
    let mut server = product.serve().await?;
    let pending: Vec<_> = requests
        .iter()
        .zip(&done)
        .filter(|(_, d)| !**d)
        .map(|(r, _)| r.clone())
        .collect();
    let finished = approve_all(server.port, &pending, admin).await;
    product::kill(&mut server.child).await?;
    if let Err(error) = finished {
        return Err(error.context(audit_ids(url).await));
    }
    let done = decided(url, requests).await?;
    ensure!(
        done.iter().all(|d| *d),
        "a request is still pending after the restart"
    );
    Ok(())
}

/// The audit log's largest id and, on PostgreSQL, its sequence's last value (a restart
/// that fails to write an audit entry says both).
async fn audit_ids(url: &str) -> String {
    let Ok(conn) = db::connect(url).await else {
        return "the database does not open".into();
    };
    let max = int(&conn, "SELECT MAX(id) AS n FROM audit_log").await;
    let last = int(&conn, "SELECT last_value AS n FROM audit_log_id_seq").await;
    conn.close().await.ok();
    format!("audit_log: max id {max:?}, sequence last value {last:?}")
}

// ---- digest ----

fn series(n: u64) -> String {
    format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})")
}

/// Families of two guardians and two children, children in groups of 25 sharing 7 classes,
/// 3 assignments per class in each window of [`WEEK`] (as the digest benchmark seeds them).
async fn seed_digest(conn: &DatabaseConnection, guardians: u64) -> Result<()> {
    let tenant = int(
        conn,
        &format!("SELECT id AS n FROM tenants WHERE slug = '{TENANT}'"),
    )
    .await?;
    let families = guardians.div_ceil(2);
    let students = families * 2;
    let classes = students.div_ceil(25) * 7;
    let now = sea_orm::Value::ChronoDateTimeUtc(Some(chrono_now()));
    let t = tenant;
    let steps = [
        format!(
            "INSERT INTO students (tenant_id, source_id, given_name, family_name, status, created_at, updated_at) {} SELECT {t}, 's' || CAST(i AS TEXT), 'Kid', CAST(i AS TEXT), 'active', $1, $1 FROM n",
            series(students)
        ),
        format!(
            "INSERT INTO contacts (tenant_id, source_key, given_name, family_name, email, created_at, updated_at) {} SELECT {t}, 'g' || CAST(i AS TEXT), 'Guardian', CAST(i AS TEXT), 'g' || CAST(i AS TEXT) || '@example.com', $1, $1 FROM n",
            series(families * 2)
        ),
        format!(
            "INSERT INTO student_contacts (tenant_id, student_id, contact_id, relationship, relationship_provenance, relationship_changed_at, status, first_seen_at, last_seen_at, updated_at) {} SELECT {t}, ((i - 1) / 4) * 2 + 1 + ((i - 1) % 2), ((i - 1) / 4) * 2 + 1 + ((i - 1) / 2) % 2, CASE WHEN (i - 1) / 2 % 2 = 0 THEN 'parent' ELSE 'guardian' END, 'sync', $1, 'active', $1, $1, $1 FROM n",
            series(families * 4)
        ),
        format!(
            "INSERT INTO classes (tenant_id, source_id, title, status, created_at, updated_at) {} SELECT {t}, 'c' || CAST(i AS TEXT), 'Class ' || CAST(i AS TEXT), 'active', $1, $1 FROM n",
            series(classes)
        ),
        format!(
            "INSERT INTO enrollments (tenant_id, class_id, role, person_id, status, created_at, updated_at) {} SELECT {t}, ((i - 1) / 7 / 25) * 7 + ((i - 1) % 7) + 1, 'student', (i - 1) / 7 + 1, 'active', $1, $1 FROM n",
            series(students * 7)
        ),
    ];
    for sql in &steps {
        exec(conn, sql, vec![now.clone()]).await?;
    }
    for (slot, due) in [
        (1, "2026-11-22T13:00:00Z"),
        (2, "2026-11-24T13:00:00Z"),
        (3, "2026-11-26T13:00:00Z"),
        (4, "2026-11-29T13:00:00Z"),
        (5, "2026-12-01T13:00:00Z"),
        (6, "2026-12-03T13:00:00Z"),
    ] {
        let due: chrono::DateTime<chrono::Utc> = due.parse()?;
        exec(
            conn,
            &format!("INSERT INTO assignments (tenant_id, class_id, external_id, title, due_at, due_offset_seconds, points, created_by, created_at, updated_at) {} SELECT {t}, i, 'a{slot}-' || CAST(i AS TEXT), 'Assignment {slot}', $2, -18000, 10, 'crash', $1, $1 FROM n", series(classes)),
            vec![now.clone(), sea_orm::Value::ChronoDateTimeUtc(Some(due))],
        )
        .await?;
    }
    exec(
        conn,
        "UPDATE tenant_settings SET digest_enabled = TRUE",
        vec![],
    )
    .await?;
    Ok(())
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn digest_args() -> Vec<&'static str> {
    vec![
        "digest", "run", "--tenant", TENANT, "--week", WEEK, "--json",
    ]
}

async fn prepare_digest(
    options: &Options,
    dbs: &Databases,
    template: &str,
) -> Result<(Duration, Reference)> {
    let (url, _) = base(options, dbs, template).await?;
    let conn = db::connect(&url).await?;
    seed_digest(&conn, options.scale.guardians).await?;
    conn.close().await?;
    dbs.seal(&url).await?;
    let reference_url = dbs.copy(template, "digest_ref").await?;
    let product = Product::new(
        options.product.clone(),
        &reference_url,
        "smtp://127.0.0.1:9?tls=none",
    );
    let window = timed(&product, &digest_args()).await?;
    let conn = db::connect(&reference_url).await?;
    let contacts = ints(
        &conn,
        "SELECT contact_id AS n FROM digest_deliveries ORDER BY contact_id",
    )
    .await?;
    conn.close().await?;
    dbs.drop("digest_ref").await?;
    ensure!(!contacts.is_empty(), "the digest run queued nothing");
    Ok((window, Reference::Digest { contacts }))
}

/// The guardians with a delivery, in contact order, after checking each has one delivery
/// and that a `digest_runs` row covers every delivery.
async fn deliveries(url: &str) -> Result<Vec<i64>> {
    let conn = open_checked(url).await?;
    let contacts = ints(
        &conn,
        "SELECT contact_id AS n FROM digest_deliveries ORDER BY contact_id",
    )
    .await?;
    let uncovered = int(&conn, "SELECT COUNT(*) AS n FROM digest_deliveries d WHERE NOT EXISTS (SELECT 1 FROM digest_runs r WHERE d.id BETWEEN r.first_id AND r.last_id)").await?;
    conn.close().await?;
    let distinct: HashSet<_> = contacts.iter().collect();
    ensure!(
        distinct.len() == contacts.len(),
        "a guardian has two deliveries for the week"
    );
    ensure!(
        uncovered == 0,
        "{uncovered} deliveries outside every recorded run"
    );
    Ok(contacts)
}

async fn digest_trial(
    product: &Product,
    url: &str,
    expected: &[i64],
    server: Option<&PrivateServer>,
    trial: &mut Trial,
) -> Result<()> {
    kill_after(product, &digest_args(), server, trial).await?;
    let left = deliveries(url).await?;
    ensure!(
        expected.starts_with(&left),
        "the {} deliveries left are not a prefix of the run's {}",
        left.len(),
        expected.len()
    );
    trial.state = match left.len() {
        0 => "before".into(),
        n if n == expected.len() => "after".into(),
        n => format!("partial {n}/{}", expected.len()),
    };
    product.run(&digest_args()).await?;
    let whole = deliveries(url).await?;
    ensure!(
        whole == expected,
        "the rerun reached {} guardians of {}",
        whole.len(),
        expected.len()
    );
    Ok(())
}

// ---- dispatch ----

/// Emails of the guardians whose digest is sent: handed to the outbox (`handed_through`)
/// and its outbox row gone (removed when sent) or marked sent.
const SENT: &str = "SELECT c.email AS t FROM digest_deliveries d \
     JOIN digest_runs r ON d.id BETWEEN r.first_id AND r.last_id \
     JOIN contacts c ON c.id = d.contact_id \
     WHERE d.id <= r.handed_through AND NOT EXISTS \
     (SELECT 1 FROM outbox o WHERE o.kind = 'digest' AND o.ref_id = d.id AND o.status <> 'sent')";

async fn prepare_dispatch(
    options: &Options,
    dbs: &Databases,
    template: &str,
) -> Result<(Duration, Reference)> {
    let (url, product) = base(options, dbs, template).await?;
    let conn = db::connect(&url).await?;
    seed_digest(&conn, options.scale.guardians).await?;
    conn.close().await?;
    product.run(&digest_args()).await?;
    let conn = db::connect(&url).await?;
    let messages = texts(&conn, "SELECT c.email AS t FROM digest_deliveries d JOIN contacts c ON c.id = d.contact_id ORDER BY d.id").await?;
    conn.close().await?;
    dbs.seal(&url).await?;
    let reference_url = dbs.copy(template, "dispatch_ref").await?;
    let sink = Sink::accept_all().await?;
    let product = Product::new(options.product.clone(), &reference_url, &sink.url());
    let window = timed(&product, &["dispatch", "--once"]).await?;
    let sent = sink.recipients().len();
    dbs.drop("dispatch_ref").await?;
    ensure!(!messages.is_empty(), "nothing to dispatch");
    ensure!(
        sent == messages.len(),
        "the reference dispatch reached {sent} of {}",
        messages.len()
    );
    Ok((window, Reference::Dispatch { messages }))
}

/// The guardians whose digest is sent, and the outbox rows that failed or died.
async fn outbox_state(url: &str) -> Result<(HashSet<String>, i64)> {
    let conn = open_checked(url).await?;
    let sent: HashSet<String> = texts(&conn, SENT).await?.into_iter().collect();
    let bad = int(
        &conn,
        "SELECT COUNT(*) AS n FROM outbox WHERE status NOT IN ('queued', 'sending', 'sent')",
    )
    .await?;
    conn.close().await?;
    Ok((sent, bad))
}

async fn dispatch_trial(
    product: &Product,
    url: &str,
    sink: &Sink,
    messages: &[String],
    server: Option<&PrivateServer>,
    trial: &mut Trial,
) -> Result<()> {
    kill_after(product, &["dispatch", "--once"], server, trial).await?;
    let (sent, bad) = outbox_state(url).await?;
    ensure!(bad == 0, "{bad} messages failed or dead after the kill");
    let received = sink.recipients();
    let lost: Vec<_> = sent
        .iter()
        .filter(|to| !received.contains_key(*to))
        .collect();
    ensure!(
        lost.is_empty(),
        "recorded as sent but never at the sink: {lost:?}"
    );
    let in_flight: HashSet<String> = received
        .keys()
        .filter(|to| !sent.contains(*to))
        .cloned()
        .collect();
    trial.in_flight = in_flight.len() as u64;
    trial.state = match sent.len() {
        0 => "before".into(),
        n if n == messages.len() => "after".into(),
        n => format!("partial {n}/{}", messages.len()),
    };
    finish_dispatch(product, url, messages.len()).await?;
    let received = sink.recipients();
    let missing = messages
        .iter()
        .filter(|to| !received.contains_key(*to))
        .count();
    ensure!(missing == 0, "{missing} digests never reached the sink");
    let twice: Vec<&String> = received
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(to, _)| to)
        .collect();
    trial.duplicates = twice.len() as u64;
    let unexpected: Vec<_> = twice
        .iter()
        .filter(|to| !in_flight.contains(**to))
        .collect();
    ensure!(
        unexpected.is_empty(),
        "sent twice though not in flight at the kill: {unexpected:?}"
    );
    Ok(())
}

/// `dispatch --once` until every digest is sent (a killed dispatcher's claims come due
/// when their lease ends), with a deadline.
async fn finish_dispatch(product: &Product, url: &str, total: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        product.run(&["dispatch", "--once"]).await?;
        let (sent, bad) = outbox_state(url).await?;
        ensure!(bad == 0, "{bad} messages failed or dead");
        if sent.len() == total {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} of {total} digests sent after 120 s of restarts",
                sent.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
