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
use crate::support::Backend;
use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

db_tests!(
    the_digest_is_in_each_guardians_language,
    invitations_are_in_the_guardians_language_with_content_language,
    the_guardian_chooses_their_language_on_their_page,
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
