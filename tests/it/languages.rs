//! The guardian's language (issue 22, item 3; docs/languages.md) through the real router,
//! the digest runner and the dispatcher: a guardian's preferred language chooses the
//! language of their digest and invitations (email with `Content-Language`, and SMS), the
//! tenant's default language serves those whose language has no translation, and plurals
//! and dates follow the locale. Names and titles are never translated.

use crate::api_support::*;
use crate::approvals::contact_id;
use crate::db_tests;
use crate::digest::{assign, report};
use crate::invitations::{api as api_with, dispatch, set, sms_gateway, start_chat};
use crate::outbox_support::read_dir_texts;
use crate::support::{APPLY, Backend, Fixture, TestDb};
use axum::body::Body;
use axum::http::Request;
use parent_connection::contacts::preferences::{self, Preferences};
use parent_connection::domain::LanguageTag;
use parent_connection::sync::Format::{SdsV1, SdsV21};
use parent_connection::sync::report::{ImportReport, RunStatus};
use serde_json::{Value, json};

db_tests!(
    the_digest_is_in_each_guardians_language,
    invitations_are_in_the_guardians_language_with_content_language,
    the_guardian_chooses_their_language_on_their_page,
    a_files_language_column_sets_it_and_latest_change_wins,
    a_v1_user_file_may_carry_a_language,
    the_sign_in_pages_and_the_code_speak_the_guardians_language,
);

async fn prefer(api: &Api, student: &str, contact: &str, language: Value) {
    let reply = api
        .send(
            Request::patch(format!("/api/v1/students/{student}/contacts/{contact}"))
                .header("authorization", format!("Bearer {}", api.admin("nyc")))
                .header("content-type", "application/json")
                .body(Body::from(
                    json!({ "preferredLanguage": language }).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

async fn the_digest_is_in_each_guardians_language(backend: Backend) {
    let api = Api::new(backend).await;
    let title = "Fractions <worksheet>";
    assign(
        &api,
        "nyc",
        "cls-1",
        "hw-1",
        title,
        "2026-11-24T23:59:00-05:00",
    )
    .await;
    let linda = contact_id(&api, "nyc", "par-1").await;
    prefer(&api, "stu-1", &linda, json!("es-MX")).await;
    let sample = report(&api, true, 500).await.unwrap().sample;
    let by_to = |to: &str| sample.iter().find(|e| e.to == to).unwrap().clone();
    let spanish = by_to("linda.ng@example.com");
    assert_eq!(spanish.language, "es");
    assert_eq!(
        spanish.subject,
        "nyc: tareas de Ava Ng y Ben Ng (semana del 28 nov 2026)"
    );
    let body = &spanish.body;
    assert!(body.starts_with("Hola, Linda Ng:\n"), "{body}");
    assert!(body.contains("Para entregar la semana pasada:"), "{body}");
    assert!(
        body.contains(&format!("  - mar 24 nov, 23:59  {title} (10 puntos)")),
        "the title as written, the date and plural in Spanish: {body}"
    );
    assert!(
        body.contains("Para dejar de recibir este resumen semanal"),
        "{body}"
    );
    let english = by_to("tom.ng@example.com");
    assert_eq!(english.language, "en");
    assert!(
        english.body.starts_with("Hello Tom Ng,"),
        "{}",
        english.body
    );
    assert!(english.body.contains("Tue Nov 24, 11:59 PM"));
    // The tenant's default serves Tom (no language) and a language with no translation.
    let tenant_admin = api.user("nyc", "ta-1", &[parent_connection::auth::Role::TenantAdmin]);
    let changed =
        crate::approvals::patch_settings(&api, &tenant_admin, json!({"defaultLanguage": "es"}))
            .await;
    assert_eq!(changed.ok()["defaultLanguage"], "es");
    prefer(&api, "stu-1", &linda, json!("fr")).await;
    let sample = report(&api, true, 500).await.unwrap().sample;
    assert!(
        sample
            .iter()
            .all(|e| e.language == "es" && e.body.starts_with("Hola"))
    );
    let refused =
        crate::approvals::patch_settings(&api, &tenant_admin, json!({"defaultLanguage": "fr"}))
            .await;
    assert_eq!(refused.error(422), "invalid_setting");
}

async fn invitations_are_in_the_guardians_language_with_content_language(backend: Backend) {
    let gateway = sms_gateway(vec![]).await;
    let files = tempfile::tempdir().unwrap();
    let api = api_with(
        backend,
        &format!("file://{}", files.path().display()),
        &gateway.uri(),
    )
    .await;
    let (linda, tom) = (
        contact_id(&api, "nyc", "par-1").await,
        contact_id(&api, "nyc", "par-2").await,
    );
    prefer(&api, "stu-1", &linda, json!("es")).await;
    start_chat(&api, &[&linda]).await;
    assert_eq!(dispatch(&api).await.sent, 1);
    let mails = read_dir_texts(files.path());
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(mail.contains("Content-Language: es"), "{mail}");
    assert!(mail.contains("le invit"), "{mail}");
    assert!(mail.contains("Sam Lee"), "names as they are: {mail}");
    // Tom's text message, in English; Linda's, in Spanish.
    set(&api, json!({"preferredInviteChannel": "sms"})).await;
    start_chat(&api, &[&tom]).await;
    start_chat(&api, &[&linda, &tom]).await;
    dispatch(&api).await;
    let bodies: Vec<String> = gateway
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).to_string())
        .collect();
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("Reply+STOP") || b.contains("Reply%20STOP")),
        "{bodies:?}"
    );
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("Responda+STOP") || b.contains("Responda%20STOP")),
        "{bodies:?}"
    );
}

async fn the_guardian_chooses_their_language_on_their_page(backend: Backend) {
    let api = Api::with(backend, |config| config.web.token_signin = true).await;
    let linda = contact_id(&api, "nyc", "par-1").await;
    let token = api.mint(
        "nyc",
        parent_connection::auth::mint::Subject::Contact {
            contact_id: linda.clone(),
        },
    );
    let session = page_session(&api, &token).await;
    let page = page_get(&api, "/guardian", Some(&session)).await;
    assert!(html(&page).contains(r#"<html lang="en">"#));
    assert!(html(&page).contains("Your children and their teachers"));
    let csrf = csrf_of(&page);
    let saved = page_post(
        &api,
        "/guardian/language",
        &session,
        &[("csrf", &csrf), ("language", "es")],
    )
    .await;
    assert_eq!(saved.status, 303);
    let page = page_get(&api, "/guardian?done=language", Some(&session)).await;
    let text = html(&page);
    assert!(text.contains(r#"<html lang="es">"#), "{text}");
    assert!(text.contains("Se guardó su idioma."), "{text}");
    assert!(text.contains("Sus hijos y sus maestros"), "{text}");
    assert!(text.contains(r#"<option value="es" selected>"#), "{text}");
    let item = crate::approvals::teacher_view(&api, "stu-1").await;
    let linda_item = item.iter().find(|c| c["id"] == linda.as_str()).unwrap();
    assert_eq!(linda_item["preferredLanguage"], "es");
    // Back to the school's language; a language that is not offered changes nothing.
    page_post(
        &api,
        "/guardian/language",
        &session,
        &[("csrf", &csrf), ("language", "")],
    )
    .await;
    let refused = page_post(
        &api,
        "/guardian/language",
        &session,
        &[("csrf", &csrf), ("language", "tlh")],
    )
    .await;
    assert_eq!(refused.status, 404);
    let page = page_get(&api, "/guardian", Some(&session)).await;
    assert!(html(&page).contains(r#"<html lang="en">"#));
    let audited = api
        .db
        .count("SELECT COUNT(*) FROM audit_log WHERE action = 'contact.preferences'")
        .await;
    assert_eq!(audited, 2);
}

/// `users.csv` of the basic fixture with a `language` column holding `languages` for
/// par-1, par-2 and par-3 (students and staff blank).
fn users_with_languages(fixture: &Fixture, [par1, par2, par3]: [&str; 3]) {
    fixture.write(
        "users.csv",
        format!(
            "sourcedId,username,givenName,familyName,email,phone,sms,language\n\
             stu-1,ava@school.example,Ava,Ng,,,,Spanish\n\
             stu-2,ben@school.example,Ben,Ng,,,,\n\
             stu-3,cy@school.example,Cy,Ortiz,,,,\n\
             tch-1,mr.lee@school.example,Sam,Lee,mr.lee@school.example,,,\n\
             par-1,linda,Linda,Ng,linda.ng@example.com,(202) 555-0143,,{par1}\n\
             par-2,tom,Tom,Ng,tom.ng@example.com,,+1 202 555 0177,{par2}\n\
             par-3,rosa,Rosa,Ortiz,rosa.ortiz@example.com,555-12,,{par3}\n\
             rel-1,gran,Grace,Ng,grace@example.com,,,\n\
             doc-1,drx,Dr,House,house@clinic.example,,,\n"
        ),
    );
}

/// `report` warns `invalid_language` at (file, record, column) about `value`.
fn language_warning(report: &ImportReport, (file, record, column): (&str, u64, &str), value: &str) {
    let warning = report
        .warnings
        .iter()
        .find(|w| w.code == "invalid_language")
        .expect("language warning");
    assert_eq!(
        (
            warning.file.as_str(),
            warning.record,
            warning.column.as_deref()
        ),
        (file, Some(record), Some(column))
    );
    assert!(warning.message.contains(value), "{}", warning.message);
}

async fn language_of(db: &TestDb, key: &str) -> (Option<String>, Option<String>) {
    db.contact_field(key, "preferred_language").await
}

fn pair(language: &str, source: &str) -> (Option<String>, Option<String>) {
    (Some(language.into()), Some(source.into()))
}

async fn a_files_language_column_sets_it_and_latest_change_wins(backend: Backend) {
    let db = TestDb::new(backend).await;
    let tenant = db.tenant("demo").await;
    let fixture = Fixture::v21();
    // A name, a tag in any case, and a value that is no language.
    users_with_languages(&fixture, ["Spanish", "pt-br", "Klingon!"]);
    let first = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(first.status, RunStatus::Applied, "{:#?}", first.errors);
    assert_eq!(language_of(&db, "par-1").await, pair("es", "sync"));
    assert_eq!(language_of(&db, "par-2").await, pair("pt-BR", "sync"));
    assert_eq!(language_of(&db, "par-3").await, (None, None));
    language_warning(&first, ("users.csv", 8, "language"), "Klingon!");
    // The same file again writes nothing and warns again.
    let again = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(again.rows_written, 0, "{:#?}", again.counts);
    assert!(again.warnings.iter().any(|w| w.code == "invalid_language"));

    // An admin's later choice survives files that still say what they said.
    let linda = db
        .texts(
            "SELECT CAST(id AS TEXT) FROM contacts WHERE source_key = 'par-1'",
            vec![],
        )
        .await[0]
        .parse::<i64>()
        .unwrap();
    let french = Preferences {
        preferred_language: Some(Some(LanguageTag::parse("fr").unwrap())),
        time_zone: None,
    };
    preferences::set(&db.conn, tenant.id, ("stu-1", linda), &french, "admin@demo")
        .await
        .unwrap();
    assert_eq!(language_of(&db, "par-1").await, pair("fr", "admin"));
    db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(language_of(&db, "par-1").await, pair("fr", "admin"));

    // A new value in the file is a later change: it wins (an ISO 639-2 code here).
    users_with_languages(&fixture, ["ara", "pt-br", ""]);
    let changed = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(
        changed.entities.contacts.updated, 1,
        "{:#?}",
        changed.entities
    );
    assert_eq!(language_of(&db, "par-1").await, pair("ar", "sync"));

    // An export without the column, or a blank value, erases no one's language.
    fixture.write(
        "users.csv",
        std::fs::read_to_string(Fixture::v21().path().join("users.csv")).unwrap(),
    );
    let without = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(without.status, RunStatus::Applied, "{:#?}", without.errors);
    assert_eq!(language_of(&db, "par-1").await, pair("ar", "sync"));
    assert_eq!(language_of(&db, "par-2").await, pair("pt-BR", "sync"));
    // ... and bringing the same value back is no change over the admin's.
    preferences::set(&db.conn, tenant.id, ("stu-1", linda), &french, "admin@demo")
        .await
        .unwrap();
    users_with_languages(&fixture, ["ara", "pt-br", ""]);
    db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(language_of(&db, "par-1").await, pair("fr", "admin"));
}

async fn a_v1_user_file_may_carry_a_language(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let fixture = Fixture::v1();
    fixture.write(
        "User.csv",
        "Email,First Name,Last Name,Phone,SIS ID,Language\n\
         Linda.Ng@example.com,Linda,Ng,202-555-0143,,spa\n\
         tom.ng@example.com,Tom,Ng,,G2,\n\
         aide@example.com,Al,Aide,,,Elvish?\n",
    );
    let report = db.import("demo", SdsV1, fixture.path(), APPLY).await;
    assert_eq!(report.status, RunStatus::Applied, "{:#?}", report.errors);
    assert_eq!(
        language_of(&db, "linda.ng@example.com").await,
        pair("es", "sync")
    );
    assert_eq!(language_of(&db, "tom.ng@example.com").await, (None, None));
    language_warning(&report, ("User.csv", 4, "Language"), "Elvish?");
}

/// `POST /signin/code` from the Spanish page of the browser holding the flow `cookie`.
async fn ask_in_spanish(api: &Api, cookie: &str, address: &str) -> Reply {
    let csrf = cookie.split_once('=').unwrap().1;
    let fields = [
        ("csrf", csrf),
        ("tenant", "nyc"),
        ("lang", "es"),
        ("address", address),
    ];
    page_post(api, "/signin/code", cookie, &fields).await
}

async fn signin_get(api: &Api, path: &str, accept_language: &str) -> Reply {
    api.send(
        Request::get(path)
            .header("accept-language", accept_language)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

async fn the_sign_in_pages_and_the_code_speak_the_guardians_language(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let mail = format!("file://{}", files.path().display());
    let api = Api::with(backend, move |config| config.mail.url = mail).await;
    let linda = contact_id(&api, "nyc", "par-1").await;
    prefer(&api, "stu-1", &linda, json!("es")).await;

    // The browser's language, by weight; the page's language links win over it.
    let ask = signin_get(&api, "/signin/code?tenant=nyc", "fr-FR, es;q=0.8, en;q=0.5").await;
    assert_eq!(ask.status, 200);
    let page = html(&ask);
    assert!(page.contains(r#"<html lang="es">"#), "{page}");
    assert!(
        page.contains("<h1>Iniciar sesión con un código</h1>"),
        "{page}"
    );
    assert!(page.contains(r#"hreflang="en">English</a>"#), "{page}");
    assert!(
        page.contains(r#"aria-current="page">Español</a>"#),
        "{page}"
    );
    assert!(page.contains(r#"<input type="hidden" name="lang" value="es">"#));
    let english = signin_get(&api, "/signin/code?tenant=nyc&lang=en", "es").await;
    assert!(html(&english).contains(r#"<html lang="en">"#));
    assert!(html(&english).contains("Sign in with a code"));
    // Without either, the district's default language.
    let default = page_get(&api, "/signin/code?tenant=nyc", None).await;
    assert!(html(&default).contains(r#"<html lang="en">"#));

    let cookie = set_cookie(&ask);
    let csrf = cookie.split_once('=').unwrap().1.to_string();
    // An error, next to the field and in the summary, in Spanish.
    let wrong = ask_in_spanish(&api, &cookie, "hola").await;
    assert_eq!(wrong.status, 422);
    let page = html(&wrong);
    assert!(page.contains("Hay un problema"), "{page}");
    assert!(
        page.contains("Escriba su correo electrónico (como nombre@ejemplo.com)"),
        "{page}"
    );
    assert!(page.contains(r#"aria-invalid="true""#), "{page}");

    let sent = ask_in_spanish(&api, &cookie, "linda.ng@example.com").await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert_eq!(
        sent.headers["location"],
        "/signin/code/verify?tenant=nyc&lang=es"
    );
    let verify = page_get(
        &api,
        "/signin/code/verify?tenant=nyc&lang=es",
        Some(&cookie),
    )
    .await;
    let page = html(&verify);
    assert!(page.contains("<h1>Escriba su código</h1>"), "{page}");
    assert!(page.contains("durante 10 minutos"), "{page}");
    let wrong_code = page_post(
        &api,
        "/signin/code/verify",
        &cookie,
        &[
            ("csrf", &csrf),
            ("tenant", "nyc"),
            ("lang", "es"),
            ("code", "12"),
        ],
    )
    .await;
    assert_eq!(wrong_code.status, 422);
    assert!(html(&wrong_code).contains("Escriba los 6 dígitos"));

    // The code itself, in Linda's language.
    assert_eq!(dispatch(&api).await.sent, 1);
    let mails = read_dir_texts(files.path());
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("Content-Language: es"), "{}", mails[0]);
    assert!(mails[0].contains("para iniciar sesi"), "{}", mails[0]);
}
