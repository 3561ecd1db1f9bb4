//! The authorization matrix: every route of the API (from the route table) and of the pages
//! (from the page routers' source), called as every kind of caller, each on a fresh copy of
//! the same small district. The test asserts the exact set of callers each route lets
//! through, and keeps `docs/authorization.md` (the table of what every caller got) current:
//! when the table it builds differs from the file, it writes the file and fails, so a change
//! of access is always a visible change of that document.
//!
//! A caller is "let through" when the answer is not a refusal: refusals are 401, 403, a 404
//! whose code is `not_found` (a resource out of reach reads as one that does not exist), and
//! on pages a redirect to `/signin`. Every id in a path names a resource that exists, so an
//! allowed caller never gets `not_found`.

use crate::api_support::{
    Api, Reply, SECRET, alg_none, api_config, claims, hs256, multipart, send,
};
use crate::support::{APPLY, Backend, Fixture, TestDb};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use parent_connection::api::{self, AppState};
use parent_connection::auth::Role;
use parent_connection::auth::mint::Subject;
use parent_connection::sync::Format;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

crate::db_tests!(every_route_as_every_caller);

/// The SMS webhook's shared secret: the webhook's credential, sent by every caller.
const WEBHOOK_SECRET: &str = "webhook-secret-of-the-matrix";

/// The kinds of caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Teacher,
    OtherTeacher,
    LeftTeacher,
    GlobalAdmin,
    TeamsAdmin,
    TenantAdmin,
    RosterApp,
    RosterWriteApp,
    AssignmentsApp,
    Guardian,
    OtherGuardian,
    OtherTenant,
    NoToken,
    Expired,
    Forged,
    AlgNone,
}

use Who::*;

const EVERY_CALLER: [Who; 16] = [
    Teacher,
    OtherTeacher,
    LeftTeacher,
    GlobalAdmin,
    TeamsAdmin,
    TenantAdmin,
    RosterApp,
    RosterWriteApp,
    AssignmentsApp,
    Guardian,
    OtherGuardian,
    OtherTenant,
    NoToken,
    Expired,
    Forged,
    AlgNone,
];

impl Who {
    /// Column heading of the table.
    fn heading(self) -> &'static str {
        match self {
            Teacher => "teacher of the class",
            OtherTeacher => "teacher of another class",
            LeftTeacher => "teacher who left",
            GlobalAdmin => "global-admin",
            TeamsAdmin => "teams-admin",
            TenantAdmin => "tenant-admin",
            RosterApp => "app EduRoster.Read.All",
            RosterWriteApp => "app EduRoster.ReadWrite.All",
            AssignmentsApp => "app EduAssignments.ReadWrite.All",
            Guardian => "guardian of the student",
            OtherGuardian => "another guardian",
            OtherTenant => "admin of another tenant",
            NoToken => "no token",
            Expired => "expired token",
            Forged => "forged signature",
            AlgNone => "alg: none",
        }
    }
}

/// The ids of the district every caller meets (`nyc`; `bos` is the other tenant).
#[derive(Debug, Clone)]
struct World {
    /// Linda Ng, parent of stu-1 and stu-2: the guardian in the chat.
    linda: String,
    /// Tom Ng, guardian of stu-1: blocked by the teacher.
    tom: String,
    /// Rosa Ortiz, parent of stu-3 (the other class): the other guardian.
    rosa: String,
    /// Max Ng, guardian of stu-1: blocked by the teacher (unblocked on the page).
    max: String,
    /// Ann Ng, guardian of stu-1: in the chat (removed on the page), unsubscribed (lifted on
    /// the page).
    ann: String,
    /// Eve Ng, guardian of stu-1: in the chat (removed through the API).
    eve: String,
    /// Kai Ng, guardian of stu-1: restricted (restricted again and lifted through the API).
    kai: String,
    /// Joy Ng, guardian of stu-1: restricted (restricted again and lifted on the pages).
    joy: String,
    /// The second dead message (requeued on the page).
    outbox_2: String,
    /// The second email suppression (lifted on the page).
    suppression_2: String,
    chat: String,
    invitation: String,
    join_token: String,
    /// Linda's digest unsubscribe token.
    unsubscribe_token: String,
    request: String,
    erasure: String,
    outbox: String,
    suppression: String,
    import: String,
}

/// The district: the basic SDS v2.1 files (stu-3 and Rosa already there), plus a second
/// class (cls-2: tch-2 and stu-3), a teacher with no class (tch-3) and two more guardians of
/// stu-1 (Max, Ann), so that a route and its page each act on their own resource.
fn district() -> Fixture {
    let fixture = Fixture::v21();
    let append = |file: &str, rows: &str| {
        use std::io::Write;
        let mut out = std::fs::OpenOptions::new()
            .append(true)
            .open(fixture.path().join(file))
            .unwrap();
        out.write_all(rows.as_bytes()).unwrap();
    };
    append("classes.csv", "cls-2,sch-1,Art 2B\n");
    append(
        "enrollments.csv",
        "cls-2,stu-3,student\ncls-2,tch-2,teacher\n",
    );
    append(
        "users.csv",
        "tch-2,ms.kay@school.example,Kim,Kay,ms.kay@school.example,,\ntch-3,mr.old@school.example,Al,Old,mr.old@school.example,,\n",
    );
    append("roles.csv", "tch-2,sch-1,teacher\ntch-3,sch-1,teacher\n");
    append(
        "users.csv",
        "par-4,max,Max,Ng,max.ng@example.com,,\npar-5,ann,Ann,Ng,ann.ng@example.com,,\npar-6,eve,Eve,Ng,eve.ng@example.com,,\n\
         par-7,kai,Kai,Ng,kai.ng@example.com,,\npar-8,joy,Joy,Ng,joy.ng@example.com,,\n",
    );
    append(
        "relationships.csv",
        "stu-1,par-4,guardian\nstu-1,par-5,guardian\nstu-1,par-6,guardian\nstu-1,par-7,guardian\nstu-1,par-8,guardian\n",
    );
    fixture
}

/// A fresh copy of the district with the resources every route names.
async fn fresh(backend: Backend) -> (Api, World) {
    let db = TestDb::new(backend).await;
    db.tenant("nyc").await;
    db.tenant("bos").await;
    let report = db
        .import("nyc", Format::SdsV21, district().path(), APPLY)
        .await;
    assert!(report.status.is_success(), "{:?}", report.errors);
    let report = db
        .import("bos", Format::SdsV1, Fixture::v1().path(), APPLY)
        .await;
    assert!(report.status.is_success(), "{:?}", report.errors);
    let mut config = api_config();
    config.web.token_signin = true;
    config.sms.webhook_secret = WEBHOOK_SECRET.into();
    // The stored OneRoster connection names a closed local port: a run fails at once. Its
    // secret is sealed with a configured key (the test database has no data folder).
    config.oneroster.max_retries = 0;
    config.oneroster.secret_key = "ab".repeat(32);
    let app = api::router(AppState::new(db.conn.clone(), config.clone()).expect("state"));
    let api = Api { db, config, app };
    let world = build_world(&api).await;
    (api, world)
}

async fn call(api: &Api, method: Method, path: &str, token: &str, body: Value) -> Reply {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    let body = if body.is_null() {
        Body::empty()
    } else {
        builder = builder.header("content-type", "application/json");
        Body::from(body.to_string())
    };
    api.send(builder.body(body).unwrap()).await
}

fn created(reply: &Reply) -> &Value {
    assert!(
        reply.status.is_success(),
        "{}: {}",
        reply.status,
        reply.body
    );
    &reply.body
}

async fn contact_id(api: &Api, student: &str, given: &str) -> String {
    let admin = api.admin("nyc");
    let reply = api
        .get(
            &format!("/api/v1/students/{student}/contacts"),
            Some(&admin),
        )
        .await;
    reply.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["givenName"] == given)
        .unwrap_or_else(|| panic!("{given} of {student}: {}", reply.body))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn first_text(api: &Api, sql: &str) -> String {
    api.db
        .texts(sql, vec![])
        .await
        .pop()
        .unwrap_or_else(|| panic!("nothing for {sql}"))
}

async fn build_world(api: &Api) -> World {
    let teacher = api.teacher();
    let admin = api.admin("nyc");
    let linda = contact_id(api, "stu-1", "Linda").await;
    let tom = contact_id(api, "stu-1", "Tom").await;
    let grace = contact_id(api, "stu-1", "Grace").await;
    let rosa = contact_id(api, "stu-3", "Rosa").await;
    let max = contact_id(api, "stu-1", "Max").await;
    let ann = contact_id(api, "stu-1", "Ann").await;
    let eve = contact_id(api, "stu-1", "Eve").await;
    let kai = contact_id(api, "stu-1", "Kai").await;
    let joy = contact_id(api, "stu-1", "Joy").await;
    for restricted in [&kai, &joy] {
        created(
            &call(
                api,
                Method::POST,
                &format!("/api/v1/students/stu-1/contacts/{restricted}/restriction"),
                &admin,
                json!({"reason": "court order"}),
            )
            .await,
        );
    }
    let chat = call(
        api,
        Method::POST,
        "/api/v1/chats",
        &teacher,
        json!({"studentId": "stu-1", "contactIds": [linda, ann, eve]}),
    )
    .await;
    let chat_body = created(&chat);
    let chat_id = chat_body["id"].as_str().unwrap().to_string();
    let invitation = chat_body["invitations"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("invitation: {chat_body}"))
        .to_string();
    for blocked in [&tom, &max] {
        created(
            &call(
                api,
                Method::POST,
                "/api/v1/blocks",
                &teacher,
                json!({"contactId": blocked}),
            )
            .await,
        );
    }
    let request = call(
        api,
        Method::POST,
        "/api/v1/students/stu-1/contact-requests",
        &teacher,
        json!({"action": "update", "contactId": linda, "contact": {"mobilePhone": "+12025550111"}}),
    )
    .await;
    let request = created(&request)["id"].as_str().unwrap().to_string();
    created(
        &call(
            api,
            Method::PUT,
            "/api/v1/classes/cls-1/assignments/hw-1",
            &teacher,
            json!({"title": "Fractions", "dueAt": "2026-12-10T17:00:00-05:00"}),
        )
        .await,
    );
    let erased = call(
        api,
        Method::POST,
        &format!("/api/v1/students/stu-1/contacts/{grace}/erase"),
        &admin,
        json!({"reason": "court order"}),
    )
    .await;
    let erasure = created(&erased)["erased"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for unsubscribed in [&linda, &ann] {
        created(
            &call(
                api,
                Method::POST,
                "/api/v1/digest/unsubscribes",
                &admin,
                json!({"contactId": unsubscribed}),
            )
            .await,
        );
    }
    for address in ["bounced@example.com", "complained@example.com"] {
        api.db
            .exec(&format!(
                "INSERT INTO email_suppressions (tenant_id, email, reason, created_at) SELECT id, '{address}', 'hard bounce', CURRENT_TIMESTAMP FROM tenants WHERE slug = 'nyc'"
            ))
            .await;
    }
    let suppressions = api
        .db
        .texts(
            "SELECT CAST(id AS TEXT) FROM email_suppressions ORDER BY id",
            vec![],
        )
        .await;
    // Two messages that gave up, to requeue (through the API and on the page).
    api.db
        .exec("UPDATE outbox SET status = 'dead', last_error = 'gave up'")
        .await;
    let dead = api
        .db
        .texts("SELECT CAST(id AS TEXT) FROM outbox ORDER BY id", vec![])
        .await;
    assert!(dead.len() >= 2, "{dead:?}");
    created(
        &call(
            api,
            Method::PUT,
            "/api/v1/oneroster/connection",
            &admin,
            json!({"baseUrl": "http://127.0.0.1:9/ims/oneroster/v1p1", "tokenUrl": "http://127.0.0.1:9/oauth/token", "clientId": "pc", "clientSecret": "s3cret-value"}),
        )
        .await,
    );
    let tenant = parent_connection::tenants::find(&api.db.conn, "nyc")
        .await
        .unwrap()
        .id;
    let secret = parent_connection::digest::unsubscribe_secret(&api.db.conn, tenant)
        .await
        .unwrap();
    let unsubscribe = parent_connection::links::sign(
        &secret,
        parent_connection::links::Purpose::DigestUnsubscribe,
        tenant,
        linda.parse().unwrap(),
    );
    World {
        unsubscribe_token: unsubscribe,
        join_token: first_text(api, "SELECT join_token FROM invitations").await,
        outbox: dead[0].clone(),
        outbox_2: dead[1].clone(),
        suppression: suppressions[0].clone(),
        suppression_2: suppressions[1].clone(),
        import: first_text(
            api,
            "SELECT CAST(r.id AS TEXT) FROM sync_runs r JOIN tenants t ON t.id = r.tenant_id WHERE t.slug = 'nyc'",
        )
        .await,
        linda,
        tom,
        rosa,
        max,
        ann,
        eve,
        kai,
        joy,
        chat: chat_id,
        invitation,
        request,
        erasure,
    }
}

/// The caller's bearer token (`None`: no Authorization header).
fn token(api: &Api, world: &World, who: Who) -> Option<String> {
    let user = |id: &str, role: Role| api.user("nyc", id, &[role]);
    let guardian = |contact: &str| {
        api.mint(
            "nyc",
            Subject::Contact {
                contact_id: contact.into(),
            },
        )
    };
    Some(match who {
        Teacher => user("tch-1", Role::Teacher),
        OtherTeacher => user("tch-2", Role::Teacher),
        LeftTeacher => user("tch-3", Role::Teacher),
        GlobalAdmin => user("admin-1", Role::GlobalAdmin),
        TeamsAdmin => user("admin-2", Role::TeamsAdmin),
        TenantAdmin => user("admin-3", Role::TenantAdmin),
        RosterApp => api.app("nyc", &["EduRoster.Read.All"]),
        RosterWriteApp => api.app("nyc", &["EduRoster.ReadWrite.All"]),
        AssignmentsApp => api.app("nyc", &["EduAssignments.ReadWrite.All"]),
        Guardian => guardian(&world.linda),
        OtherGuardian => guardian(&world.rosa),
        OtherTenant => api.admin("bos"),
        NoToken => return None,
        Expired => {
            let mut expired = claims(&api.config, "nyc", "admin-1", &["global-admin"]);
            expired.exp -= 3600;
            expired.iat -= 4200;
            expired.nbf = Some(expired.iat);
            hs256(&expired, SECRET.as_bytes())
        }
        Forged => hs256(
            &claims(&api.config, "nyc", "admin-1", &["global-admin"]),
            b"not-the-secret-0123456789abcdef0123456789",
        ),
        AlgNone => alg_none(&claims(&api.config, "nyc", "admin-1", &["global-admin"])),
    })
}

enum Payload {
    None,
    Json(Value),
    Form(Vec<(&'static str, String)>),
    Upload,
}

/// The concrete call of each API route. Every route of the table must have one: a new route
/// without a line here fails the test.
fn api_call(world: &World, method: &Method, route: &str) -> Option<(String, Payload)> {
    let w = world;
    let json = Payload::Json;
    let call = match (method.as_str(), route) {
        ("GET", "/healthz" | "/readyz" | "/openapi.json") => (route.to_string(), Payload::None),
        ("GET", "/api/v1/students/{sourceId}/contacts") => {
            ("/api/v1/students/stu-1/contacts".into(), Payload::None)
        }
        ("GET", "/education/users/{sourceId}") => (
            "/education/users/stu-1?$select=relatedContacts".into(),
            Payload::None,
        ),
        ("GET", "/api/v1/classes") => ("/api/v1/classes".into(), Payload::None),
        ("GET", "/api/v1/classes/{id}/students") => {
            ("/api/v1/classes/cls-1/students".into(), Payload::None)
        }
        ("GET", "/api/v1/classes/{classSourceId}/assignments") => {
            ("/api/v1/classes/cls-1/assignments".into(), Payload::None)
        }
        ("POST", "/api/v1/classes/{classSourceId}/assignments") => (
            "/api/v1/classes/cls-1/assignments".into(),
            json(
                json!({"externalId": "hw-2", "title": "Decimals", "dueAt": "2026-12-11T17:00:00-05:00"}),
            ),
        ),
        ("PUT", "/api/v1/classes/{classSourceId}/assignments/{externalId}") => (
            "/api/v1/classes/cls-1/assignments/hw-1".into(),
            json(json!({"title": "Fractions II", "dueAt": "2026-12-10T17:00:00-05:00"})),
        ),
        ("DELETE", "/api/v1/classes/{classSourceId}/assignments/{externalId}") => (
            "/api/v1/classes/cls-1/assignments/hw-1".into(),
            Payload::None,
        ),
        ("GET", "/api/v1/classes/{classSourceId}/digest") => {
            ("/api/v1/classes/cls-1/digest".into(), Payload::None)
        }
        ("PATCH", "/api/v1/classes/{classSourceId}/digest") => (
            "/api/v1/classes/cls-1/digest".into(),
            json(json!({"notifyGuardians": false})),
        ),
        ("GET", "/api/v1/imports") => ("/api/v1/imports".into(), Payload::None),
        ("POST", "/api/v1/imports") => (
            "/api/v1/imports?format=sds-v2.1&dryRun=true".into(),
            Payload::Upload,
        ),
        ("GET", "/api/v1/imports/{id}") => (format!("/api/v1/imports/{}", w.import), Payload::None),
        ("POST", "/api/v1/students/{sourceId}/contact-requests") => (
            "/api/v1/students/stu-1/contact-requests".into(),
            json(
                json!({"action": "update", "contactId": w.linda, "contact": {"familyName": "Ng-Park"}}),
            ),
        ),
        ("GET", "/api/v1/contact-requests") => ("/api/v1/contact-requests".into(), Payload::None),
        ("GET", "/api/v1/contact-requests/{id}") => (
            format!("/api/v1/contact-requests/{}", w.request),
            Payload::None,
        ),
        ("POST", "/api/v1/contact-requests/{id}/approve") => (
            format!("/api/v1/contact-requests/{}/approve", w.request),
            json(json!({"reason": "checked"})),
        ),
        ("POST", "/api/v1/contact-requests/{id}/reject") => (
            format!("/api/v1/contact-requests/{}/reject", w.request),
            json(json!({"reason": "not checked"})),
        ),
        ("POST", "/api/v1/students/{sourceId}/contacts/{contactId}/erase") => (
            format!("/api/v1/students/stu-1/contacts/{}/erase", w.tom),
            json(json!({"reason": "request of the family"})),
        ),
        ("POST", "/api/v1/students/{sourceId}/contacts/erase") => (
            "/api/v1/students/stu-2/contacts/erase".into(),
            json(json!({"reason": "request of the family"})),
        ),
        ("GET", "/api/v1/erasures") => ("/api/v1/erasures".into(), Payload::None),
        ("PATCH", "/api/v1/students/{sourceId}/contacts/{contactId}") => (
            format!("/api/v1/students/stu-1/contacts/{}", w.linda),
            json(json!({"preferredLanguage": "es", "timeZone": "America/Chicago"})),
        ),
        ("POST", "/api/v1/invitations/{id}/urgent") => (
            format!("/api/v1/invitations/{}/urgent", w.invitation),
            Payload::None,
        ),
        ("POST", "/api/v1/students/{sourceId}/contacts/{contactId}/restriction") => (
            format!("/api/v1/students/stu-1/contacts/{}/restriction", w.kai),
            json(json!({"reason": "court order", "until": "2099-01-01T00:00:00Z"})),
        ),
        ("DELETE", "/api/v1/students/{sourceId}/contacts/{contactId}/restriction") => (
            format!("/api/v1/students/stu-1/contacts/{}/restriction", w.kai),
            Payload::None,
        ),
        ("GET", "/api/v1/students/{sourceId}/restrictions") => {
            ("/api/v1/students/stu-1/restrictions".into(), Payload::None)
        }
        ("POST", "/api/v1/erasures/{id}/lift") => (
            format!("/api/v1/erasures/{}/lift", w.erasure),
            Payload::None,
        ),
        ("GET", "/api/v1/settings") => ("/api/v1/settings".into(), Payload::None),
        ("PATCH", "/api/v1/settings") => (
            "/api/v1/settings".into(),
            json(json!({"inviteWindowDays": 8})),
        ),
        ("GET", "/api/v1/audit") => ("/api/v1/audit".into(), Payload::None),
        ("GET", "/api/v1/chats") => ("/api/v1/chats".into(), Payload::None),
        ("POST", "/api/v1/chats") => (
            "/api/v1/chats".into(),
            json(json!({"studentId": "stu-1", "contactIds": [w.linda]})),
        ),
        ("GET", "/api/v1/chats/{id}") => (format!("/api/v1/chats/{}", w.chat), Payload::None),
        ("POST", "/api/v1/chats/{id}/members") => (
            format!("/api/v1/chats/{}/members", w.chat),
            json(json!({"contactId": w.linda})),
        ),
        ("DELETE", "/api/v1/chats/{id}/members/{contactId}") => (
            format!("/api/v1/chats/{}/members/{}", w.chat, w.eve),
            Payload::None,
        ),
        ("GET", "/api/v1/chats/{id}/invitations") => (
            format!("/api/v1/chats/{}/invitations", w.chat),
            Payload::None,
        ),
        ("POST", "/api/v1/chats/{id}/invitations") => (
            format!("/api/v1/chats/{}/invitations", w.chat),
            json(json!({"contactId": w.linda})),
        ),
        ("GET", "/api/v1/blocks") => ("/api/v1/blocks".into(), Payload::None),
        ("POST", "/api/v1/blocks") => {
            ("/api/v1/blocks".into(), json(json!({"contactId": w.linda})))
        }
        ("DELETE", "/api/v1/blocks/{contactId}") => {
            (format!("/api/v1/blocks/{}", w.tom), Payload::None)
        }
        ("GET", "/api/v1/guardian/chats") => ("/api/v1/guardian/chats".into(), Payload::None),
        ("POST", "/api/v1/guardian/chats") => (
            "/api/v1/guardian/chats".into(),
            json(json!({"ownerId": "tch-1", "studentId": "stu-1"})),
        ),
        ("GET", "/api/v1/contacts/{contactId}/invitations") => (
            format!("/api/v1/contacts/{}/invitations", w.linda),
            Payload::None,
        ),
        ("GET", "/api/v1/invitations/limits") => (
            format!("/api/v1/invitations/limits?contactId={}", w.linda),
            Payload::None,
        ),
        ("GET", "/api/v1/invitations/{id}") => (
            format!("/api/v1/invitations/{}", w.invitation),
            Payload::None,
        ),
        ("GET", "/api/v1/digest/unsubscribes") => {
            ("/api/v1/digest/unsubscribes".into(), Payload::None)
        }
        ("POST", "/api/v1/digest/unsubscribes") => (
            "/api/v1/digest/unsubscribes".into(),
            json(json!({"contactId": w.tom})),
        ),
        ("DELETE", "/api/v1/digest/unsubscribes/{contactId}") => (
            format!("/api/v1/digest/unsubscribes/{}", w.linda),
            Payload::None,
        ),
        ("GET", "/api/v1/digest/deliveries") => ("/api/v1/digest/deliveries".into(), Payload::None),
        ("GET", "/api/v1/disclosures") => {
            ("/api/v1/disclosures?studentId=stu-1".into(), Payload::None)
        }
        ("GET", "/api/v1/outbox") => ("/api/v1/outbox".into(), Payload::None),
        ("POST", "/api/v1/outbox/{id}/requeue") => (
            format!("/api/v1/outbox/{}/requeue", w.outbox),
            Payload::None,
        ),
        ("GET", "/api/v1/email-suppressions") => {
            ("/api/v1/email-suppressions".into(), Payload::None)
        }
        ("DELETE", "/api/v1/email-suppressions/{id}") => (
            format!("/api/v1/email-suppressions/{}", w.suppression),
            Payload::None,
        ),
        ("GET", "/api/v1/oneroster/connection") => {
            ("/api/v1/oneroster/connection".into(), Payload::None)
        }
        ("PUT", "/api/v1/oneroster/connection") => (
            "/api/v1/oneroster/connection".into(),
            json(
                json!({"baseUrl": "http://127.0.0.1:9/ims/oneroster/v1p1", "tokenUrl": "http://127.0.0.1:9/oauth/token", "clientId": "pc", "clientSecret": "s3cret-value"}),
            ),
        ),
        ("POST", "/api/v1/oneroster/runs") => (
            "/api/v1/oneroster/runs".into(),
            json(json!({"delta": false})),
        ),
        ("POST", "/api/v1/sms/inbound/{tenant}") => (
            "/api/v1/sms/inbound/nyc".into(),
            Payload::Form(vec![
                ("From", "+12025550143".into()),
                ("Body", "HELLO".into()),
            ]),
        ),
        _ => return None,
    };
    Some(call)
}

/// Every page route as `(method, route)`, read from the page routers' source (the routers
/// are the one declaration of the pages; axum cannot list a router's routes).
fn page_routes() -> Vec<(Method, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut routes = Vec::new();
    for file in [
        "mod.rs",
        "admin/mod.rs",
        "teacher/mod.rs",
        "guardian/mod.rs",
    ] {
        let source = std::fs::read_to_string(root.join(file)).unwrap();
        let mut declarations: Vec<&str> = source.split(".route(").skip(1).collect();
        for declaration in declarations.iter_mut() {
            let end = [".merge(", "\n}\n", "crate::api::limits"]
                .iter()
                .filter_map(|stop| declaration.find(stop))
                .min()
                .unwrap_or(declaration.len());
            *declaration = &declaration[..end];
        }
        for declaration in declarations {
            let text = declaration.trim_start();
            let path = if let Some(rest) = text.strip_prefix('"') {
                rest[..rest.find('"').unwrap()].to_string()
            } else if text.starts_with("oidc::CALLBACK_PATH") {
                parent_connection::web::oidc::CALLBACK_PATH.to_string()
            } else {
                panic!("a page route this test cannot read: {text}");
            };
            let handlers = &text[text.find(',').unwrap()..];
            for (verb, method) in [("get(", Method::GET), ("post(", Method::POST)] {
                if handlers.contains(verb) {
                    routes.push((method, path.clone()));
                }
            }
        }
    }
    routes
}

/// The concrete call of each page route (form fields besides `csrf`).
fn page_call(world: &World, method: &Method, route: &str) -> (String, Payload) {
    let w = world;
    let path = match route {
        "/join/{token}" => format!("/join/{}", w.join_token),
        "/unsubscribe/{token}" => format!("/unsubscribe/{}", w.unsubscribe_token),
        "/admin/imports/{id}" => format!("/admin/imports/{}", w.import),
        "/admin/imports/{id}/errors.csv" => format!("/admin/imports/{}/errors.csv", w.import),
        "/admin/outbox/{id}/requeue" => format!("/admin/outbox/{}/requeue", w.outbox_2),
        "/admin/outbox/suppressions/{id}/lift" => {
            format!("/admin/outbox/suppressions/{}/lift", w.suppression_2)
        }
        "/admin/outbox/unsubscribes/{id}/lift" => {
            format!("/admin/outbox/unsubscribes/{}/lift", w.ann)
        }
        "/admin/approvals/{id}" => format!("/admin/approvals/{}", w.request),
        "/admin/students/{id}/contacts/{contact}/erase" => {
            format!("/admin/students/stu-3/contacts/{}/erase", w.rosa)
        }
        "/admin/outbox/invitations/{id}/urgent" => {
            format!("/admin/outbox/invitations/{}/urgent", w.invitation)
        }
        "/admin/students/{id}/contacts/{contact}/restrict"
        | "/admin/students/{id}/contacts/{contact}/restriction/lift" => {
            route.replace("{id}", "stu-1").replace("{contact}", &w.joy)
        }
        "/teacher/students/{id}/contacts/{contact}/change"
        | "/teacher/students/{id}/contacts/{contact}/removal" => route
            .replace("{id}", "stu-1")
            .replace("{contact}", &w.linda),
        "/teacher/chats/{id}/members/{contact}/remove" => {
            format!("/teacher/chats/{}/members/{}/remove", w.chat, w.ann)
        }
        "/teacher/chats/{id}/members/{contact}/block" => {
            format!("/teacher/chats/{}/members/{}/block", w.chat, w.linda)
        }
        "/teacher/chats/{id}" => format!("/teacher/chats/{}", w.chat),
        "/teacher/blocks/{contact}/unblock" => format!("/teacher/blocks/{}/unblock", w.max),
        other => other
            .replace("/admin/students/{id}", "/admin/students/stu-1")
            .replace("/teacher/classes/{id}", "/teacher/classes/cls-1")
            .replace("/teacher/students/{id}", "/teacher/students/stu-1"),
    };
    assert!(!path.contains('{'), "no ids for page route {route}");
    if *method == Method::GET {
        return (path, Payload::None);
    }
    if route == "/admin/imports" {
        return (path, Payload::Upload);
    }
    let fields = vec![
        ("reason", "checked by phone".to_string()),
        ("decision", "approve".into()),
        ("action", "approve".into()),
        ("notify", "on".into()),
        ("enabled", "on".into()),
        ("mode", "full".into()),
        ("owner", "tch-1".into()),
        ("teacher", "tch-1".into()),
        ("student", "stu-1".into()),
        ("channel", "email".into()),
        ("address", "linda.ng@example.com".into()),
        ("code", "000000".into()),
        ("tenant", "nyc".into()),
        ("given_name", "Lin".into()),
        ("family_name", "Ng".into()),
        ("email", "lin.ng@example.com".into()),
        ("relationship", "guardian".into()),
    ];
    (path, Payload::Form(fields))
}

/// What a caller got from one route: the answer's status and, for refusals, why.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    status: u16,
    refused: bool,
}

impl Outcome {
    fn of(reply: &Reply, page: bool) -> Self {
        let status = reply.status.as_u16();
        let refused = match status {
            401 | 403 => true,
            404 => page || reply.body["error"]["code"] == "not_found",
            303 if page => reply
                .headers
                .get("location")
                .and_then(|l| l.to_str().ok())
                .is_some_and(|l| l == "/signin" || l.starts_with("/signin?")),
            _ => false,
        };
        Self { status, refused }
    }

    fn cell(&self) -> String {
        if self.refused {
            format!("✗ {}", self.status)
        } else {
            format!("✓ {}", self.status)
        }
    }
}

/// The order a caller's calls go in: reads, then writes, then deletions, erasures and the
/// sign-out (which would take away what later calls need).
fn rank(method: &Method, route: &str) -> u8 {
    if route == "/web/signout" {
        return 4;
    }
    if route.ends_with("/erase") {
        return 3;
    }
    match *method {
        Method::GET => 0,
        Method::DELETE => 2,
        _ => 1,
    }
}

/// `"METHOD route"`: a row of the table.
fn row_key(method: &Method, route: &str) -> String {
    format!("{method} {route}")
}

struct Planned {
    key: String,
    method: Method,
    page: bool,
    path: String,
    body: Payload,
}

fn plan(world: &World) -> Vec<Planned> {
    let mut planned = Vec::new();
    for (method, route) in api::routes() {
        let (path, body) = api_call(world, &method, &route)
            .unwrap_or_else(|| panic!("the matrix has no call for {method} {route}: add one"));
        planned.push(Planned {
            key: row_key(&method, &route),
            method,
            page: false,
            path,
            body,
        });
    }
    for (method, route) in page_routes() {
        let (path, body) = page_call(world, &method, &route);
        planned.push(Planned {
            key: row_key(&method, &route),
            method,
            page: true,
            path,
            body,
        });
    }
    planned.sort_by_key(|p| rank(&p.method, p.key.split_once(' ').unwrap().1));
    planned
}

/// A page session of the caller (`POST /web/session` with its token), and its CSRF token.
async fn page_session(api: &Api, token: Option<&str>) -> Option<(String, String)> {
    let token = token?;
    let reply = api
        .send(
            Request::post("/web/session")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    if reply.status != StatusCode::SEE_OTHER {
        return None;
    }
    let cookie = crate::api_support::set_cookie(&reply);
    let csrf = api
        .db
        .texts(
            "SELECT csrf_token FROM web_sessions ORDER BY id DESC",
            vec![],
        )
        .await
        .swap_remove(0);
    Some((cookie, csrf))
}

fn form_body(fields: &[(&str, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace(' ', "+").replace('@', "%40")))
        .collect::<Vec<_>>()
        .join("&")
}

async fn run(
    api: &Api,
    planned: Planned,
    token: Option<&str>,
    session: &Option<(String, String)>,
) -> Outcome {
    let mut builder = Request::builder()
        .method(planned.method.clone())
        .uri(planned.path.clone());
    let api_route = !planned.page;
    if let Some(token) = token
        && (api_route || planned.path == "/web/session")
    {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    if planned.page
        && !planned.path.starts_with("/signin/code")
        && let Some((cookie, _)) = session
    {
        builder = builder.header("cookie", cookie);
    }
    let mut csrf = session.as_ref().map(|(_, c)| c.clone()).unwrap_or_default();
    if planned.path.starts_with("/signin/code") {
        // The code request is public but carries the flow its form page started.
        let ask = api.get("/signin/code?tenant=nyc", None).await;
        if planned.method == Method::GET {
            builder = builder.uri(format!(
                "{}?tenant=nyc",
                planned.path.split('?').next().unwrap()
            ));
        }
        builder = builder.header("cookie", crate::api_support::set_cookie(&ask));
        csrf = crate::api_support::csrf_of(&ask);
    }
    let body = match planned.body {
        Payload::None => Body::empty(),
        Payload::Json(value) => {
            builder = builder.header("content-type", "application/json");
            Body::from(value.to_string())
        }
        Payload::Form(mut fields) => {
            builder = builder.header("content-type", "application/x-www-form-urlencoded");
            if planned.page {
                fields.push(("csrf", csrf.clone()));
            }
            Body::from(form_body(&fields))
        }
        Payload::Upload => {
            let files = crate::api_support::fixture_files(&district());
            let zip = crate::api_support::zip(&files);
            let (content_type, body) = multipart(&[
                ("format", None, b"sds-v2.1"),
                ("dryRun", None, b"true"),
                ("file", Some("export.zip"), &zip),
            ]);
            builder = builder.header("content-type", content_type);
            if planned.page {
                builder = builder.uri(format!("{}?csrf={csrf}", planned.path));
            }
            Body::from(body)
        }
    };
    if planned.path.starts_with("/api/v1/sms/inbound/") {
        builder = builder.header("x-webhook-secret", WEBHOOK_SECRET);
    }
    let reply = send(&api.app, builder.body(body).unwrap()).await;
    assert_ne!(
        reply.status.as_u16(),
        500,
        "{}: {}",
        planned.key,
        reply.body
    );
    Outcome::of(&reply, planned.page)
}

/// Every route as one caller, on its own fresh district (returned, to be dropped once no
/// caller runs: dropping a PostgreSQL test database blocks the thread, and a connection of
/// a caller running beside it, not read meanwhile, can hold the drop up for a minute).
async fn as_caller(backend: Backend, who: Who) -> (BTreeMap<String, Outcome>, Api) {
    let (api, world) = fresh(backend).await;
    let token = token(&api, &world, who);
    let session = page_session(&api, token.as_deref()).await;
    let mut outcomes = BTreeMap::new();
    for planned in plan(&world) {
        let key = planned.key.clone();
        let outcome = run(&api, planned, token.as_deref(), &session).await;
        outcomes.insert(key, outcome);
    }
    (outcomes, api)
}

async fn every_route_as_every_caller(backend: Backend) {
    let mut table: BTreeMap<String, BTreeMap<Who, Outcome>> = BTreeMap::new();
    // Four callers at a time, each on its own database: the calls wait on the database more
    // than on the CPU.
    for callers in EVERY_CALLER.chunks(4) {
        let runs = callers.iter().map(|who| as_caller(backend, *who));
        let mut districts = Vec::new();
        for (who, (outcomes, api)) in callers
            .iter()
            .zip(futures_util::future::join_all(runs).await)
        {
            for (key, outcome) in outcomes {
                table.entry(key).or_default().insert(*who, outcome);
            }
            districts.push(api);
        }
        for api in districts {
            api.db.conn.close_by_ref().await.expect("close the pool");
        }
    }
    let document = document(&table);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/authorization.md");
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    let mut wrong = Vec::new();
    for (key, outcomes) in &table {
        let allowed: BTreeSet<Who> = outcomes
            .iter()
            .filter(|(_, o)| !o.refused)
            .map(|(w, _)| *w)
            .collect();
        let expected: BTreeSet<Who> = expected(key).iter().copied().collect();
        if allowed != expected {
            wrong.push(format!(
                "{key}: let through {allowed:?}, expected {expected:?}"
            ));
        }
    }
    if written != document {
        std::fs::write(&path, &document).unwrap();
    }
    assert!(
        wrong.is_empty(),
        "{} routes:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(
        written == document,
        "docs/authorization.md was out of date and has been rewritten: review and commit it"
    );
}

/// docs/authorization.md: the table of what every caller got.
fn document(table: &BTreeMap<String, BTreeMap<Who, Outcome>>) -> String {
    let mut out = String::from(DOC_HEAD);
    out.push_str("\n| route |");
    for (i, _) in EVERY_CALLER.iter().enumerate() {
        let _ = write!(out, " {} |", i + 1);
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(EVERY_CALLER.len()));
    for (key, outcomes) in table {
        let _ = write!(out, "\n| `{key}` |");
        for who in EVERY_CALLER {
            let _ = write!(out, " {} |", outcomes[&who].cell());
        }
    }
    out.push_str("\n\nThe callers (columns):\n\n");
    for (i, who) in EVERY_CALLER.iter().enumerate() {
        let _ = writeln!(out, "{}. {}", i + 1, who.heading());
    }
    out
}

const DOC_HEAD: &str = "# Authorization matrix

Generated by `tests/it/authz_matrix.rs` (`cargo test --test it authz_matrix`), which calls
every route of the API (the route table) and of the pages (the page routers) as each kind of
caller below, each on a fresh copy of the same small district (tenant `nyc`: class cls-1 of
teacher tch-1 with student stu-1 and guardian Linda; class cls-2 of tch-2 with stu-3 and
guardian Rosa; tch-3 teaches no class; tenant `bos` is the other tenant), on SQLite and on
PostgreSQL. The test fails when a caller is let through a route that its expected set does
not name, or refused one it names, and rewrites this file when a status changed.

`✓` let through (the status it got: a 409 or 422 there is a refusal of the request, not of
the caller); `✗` refused: 401 (no valid token), 403 (the role or kind of caller never may),
404 `not_found` (out of the caller's reach, told apart from nothing: the ids name resources
that exist), or on pages a 303 to `/signin` (no session) or a 404 page. Pages are called
with the page session that `POST /web/session` opens for the caller's token (app tokens and
invalid tokens get none). The policy behind it is `src/auth/policy.rs`, the one place that
decides.
";

const TEACHER: &[Who] = &[Teacher];
const TEACHER_OR_ASSIGNMENTS_APP: &[Who] = &[Teacher, AssignmentsApp];
const ANY_ADMIN: &[Who] = &[GlobalAdmin, TeamsAdmin, TenantAdmin];
const APPROVERS: &[Who] = &[GlobalAdmin, TeamsAdmin];
const WITH_A_SESSION: &[Who] = &[
    Teacher,
    OtherTeacher,
    LeftTeacher,
    GlobalAdmin,
    TeamsAdmin,
    TenantAdmin,
    Guardian,
    OtherGuardian,
    OtherTenant,
];
const APPROVERS_OF_ANY_TENANT: &[Who] = &[GlobalAdmin, TeamsAdmin, OtherTenant];
const ANY_ADMIN_OF_ANY_TENANT: &[Who] = &[GlobalAdmin, TeamsAdmin, TenantAdmin, OtherTenant];
const ANY_TEACHER: &[Who] = &[Teacher, OtherTeacher, LeftTeacher];
const STAFF_LISTS: &[Who] = &[
    Teacher,
    OtherTeacher,
    LeftTeacher,
    GlobalAdmin,
    TeamsAdmin,
    OtherTenant,
];
const TEACHER_OR_APPROVERS: &[Who] = &[Teacher, GlobalAdmin, TeamsAdmin];
const ASSIGNMENT_READERS: &[Who] = &[Teacher, GlobalAdmin, TeamsAdmin, AssignmentsApp];
const ANY_GUARDIAN: &[Who] = &[Guardian, OtherGuardian];
const ROSTER_APPS: &[Who] = &[RosterApp, RosterWriteApp];
const EVERYONE: &[Who] = &[
    Teacher,
    OtherTeacher,
    LeftTeacher,
    GlobalAdmin,
    TeamsAdmin,
    TenantAdmin,
    RosterApp,
    RosterWriteApp,
    AssignmentsApp,
    Guardian,
    OtherGuardian,
    OtherTenant,
    NoToken,
    Expired,
    Forged,
    AlgNone,
];
const TENANT_ADMIN: &[Who] = &[TenantAdmin];
const GUARDIAN: &[Who] = &[Guardian];

/// The callers each route must let through (the rest must be refused).
fn expected(key: &str) -> &'static [Who] {
    match key {
        "DELETE /api/v1/blocks/{contactId}"
        | "GET /teacher/chats/{id}"
        | "GET /teacher/classes/{id}"
        | "GET /teacher/students/{id}"
        | "GET /teacher/students/{id}/contacts/{contact}/change"
        | "GET /teacher/students/{id}/proposals/new"
        | "PATCH /api/v1/classes/{classSourceId}/digest"
        | "POST /api/v1/blocks"
        | "POST /api/v1/chats"
        | "POST /api/v1/chats/{id}/invitations"
        | "POST /api/v1/chats/{id}/members"
        | "POST /api/v1/students/{sourceId}/contact-requests"
        | "POST /teacher/blocks/{contact}/unblock"
        | "POST /teacher/chats/{id}/members/{contact}/block"
        | "POST /teacher/chats/{id}/members/{contact}/remove"
        | "POST /teacher/classes/{id}/digest"
        | "POST /teacher/students/{id}/chats"
        | "POST /teacher/students/{id}/contacts/{contact}/change"
        | "POST /teacher/students/{id}/contacts/{contact}/removal"
        | "POST /teacher/students/{id}/proposals/new"
        | "DELETE /api/v1/chats/{id}/members/{contactId}" => TEACHER,
        "DELETE /api/v1/classes/{classSourceId}/assignments/{externalId}"
        | "POST /api/v1/classes/{classSourceId}/assignments"
        | "PUT /api/v1/classes/{classSourceId}/assignments/{externalId}" => {
            TEACHER_OR_ASSIGNMENTS_APP
        }
        "DELETE /api/v1/digest/unsubscribes/{contactId}"
        | "GET /admin/imports/{id}"
        | "GET /admin/imports/{id}/errors.csv"
        | "GET /api/v1/imports/{id}"
        | "POST /admin/outbox/unsubscribes/{id}/lift"
        | "POST /api/v1/digest/unsubscribes" => ANY_ADMIN,
        "DELETE /api/v1/email-suppressions/{id}"
        | "GET /admin/approvals/{id}"
        | "GET /admin/students/{id}"
        | "GET /api/v1/contacts/{contactId}/invitations"
        | "POST /admin/approvals/{id}"
        | "POST /admin/outbox/suppressions/{id}/lift"
        | "POST /api/v1/contact-requests/{id}/approve"
        | "POST /api/v1/contact-requests/{id}/reject"
        | "POST /api/v1/erasures/{id}/lift"
        | "POST /api/v1/students/{sourceId}/contacts/erase"
        | "POST /api/v1/students/{sourceId}/contacts/{contactId}/erase"
        | "GET /admin/students/{id}/contacts/{contact}/erase"
        | "GET /api/v1/oneroster/connection"
        | "POST /admin/outbox/{id}/requeue"
        | "POST /admin/students/{id}/contacts/{contact}/erase"
        | "POST /api/v1/students/{sourceId}/contacts/{contactId}/restriction"
        | "DELETE /api/v1/students/{sourceId}/contacts/{contactId}/restriction"
        | "GET /api/v1/students/{sourceId}/restrictions"
        | "GET /admin/students/{id}/contacts/{contact}/restrict"
        | "POST /admin/students/{id}/contacts/{contact}/restrict"
        | "POST /admin/students/{id}/contacts/{contact}/restriction/lift"
        | "PATCH /api/v1/students/{sourceId}/contacts/{contactId}"
        | "POST /api/v1/invitations/{id}/urgent"
        | "POST /admin/outbox/invitations/{id}/urgent"
        | "POST /api/v1/outbox/{id}/requeue" => APPROVERS,
        "GET /" | "POST /web/session" | "POST /web/signout" => WITH_A_SESSION,
        "GET /admin/approvals"
        | "GET /admin/oneroster"
        | "GET /admin/disclosures"
        | "GET /api/v1/disclosures"
        | "GET /api/v1/email-suppressions"
        | "GET /api/v1/erasures"
        | "GET /api/v1/outbox"
        | "POST /admin/imports"
        | "POST /admin/oneroster"
        | "POST /admin/oneroster/run"
        | "POST /admin/oneroster/test"
        | "POST /api/v1/imports"
        | "POST /api/v1/oneroster/runs"
        | "PUT /api/v1/oneroster/connection" => APPROVERS_OF_ANY_TENANT,
        "GET /admin/audit"
        | "GET /admin/digest"
        | "GET /admin/imports"
        | "GET /admin/outbox"
        | "GET /admin/settings"
        | "GET /api/v1/audit"
        | "GET /api/v1/digest/deliveries"
        | "GET /api/v1/digest/unsubscribes"
        | "GET /api/v1/imports"
        | "GET /api/v1/settings" => ANY_ADMIN_OF_ANY_TENANT,
        "GET /api/v1/blocks"
        | "GET /teacher/blocks"
        | "GET /teacher/chats"
        | "GET /teacher/classes"
        | "GET /teacher/requests" => ANY_TEACHER,
        "GET /api/v1/chats" | "GET /api/v1/classes" | "GET /api/v1/contact-requests" => STAFF_LISTS,
        "GET /api/v1/chats/{id}"
        | "GET /api/v1/chats/{id}/invitations"
        | "GET /api/v1/classes/{classSourceId}/digest"
        | "GET /api/v1/classes/{id}/students"
        | "GET /api/v1/contact-requests/{id}"
        | "GET /api/v1/invitations/limits"
        | "GET /api/v1/invitations/{id}"
        | "GET /api/v1/students/{sourceId}/contacts" => TEACHER_OR_APPROVERS,
        "GET /api/v1/classes/{classSourceId}/assignments" => ASSIGNMENT_READERS,
        "GET /api/v1/guardian/chats"
        | "GET /guardian"
        | "POST /guardian/digest"
        | "POST /guardian/sms"
        | "POST /guardian/language" => ANY_GUARDIAN,
        "GET /education/users/{sourceId}" => ROSTER_APPS,
        "GET /healthz"
        | "GET /join/{token}"
        | "GET /openapi.json"
        | "GET /readyz"
        | "GET /signin"
        | "GET /signin/code"
        | "GET /static/web.css"
        | "GET /unsubscribe/{token}"
        | "GET /web/oidc/callback"
        | "POST /join/{token}"
        | "POST /unsubscribe/{token}"
        | "GET /signin/code/verify"
        | "POST /api/v1/sms/inbound/{tenant}"
        | "POST /signin/code/verify"
        | "POST /signin/code" => EVERYONE,
        "PATCH /api/v1/settings" | "POST /admin/settings" => TENANT_ADMIN,
        "POST /api/v1/guardian/chats" | "POST /guardian/chats" => GUARDIAN,
        _ => &[],
    }
}
