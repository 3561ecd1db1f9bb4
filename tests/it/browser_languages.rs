//! The guardian's language in a real browser (issue 22, item 3), with the keyboard only: a
//! guardian whose language is Spanish opens the invitation link and the digest's
//! unsubscribe link; both pages are in Spanish (`<html lang="es">`), the guardian tabs to
//! **Aceptar** and to **Cancelar la suscripción** and presses Enter, and the result pages
//! are in Spanish too; her own page (`/guardian`) is in Spanish, and she switches it to
//! English with its **Language** choice. On the sign-in pages, a guardian tabs to the
//! **Español** link, mistypes her address (the error and the summary in Spanish) and asks for
//! her code, all in Spanish. axe checks every page visited at 1280 and 375 px
//! (browser_support.rs).

use crate::api_support::*;
use crate::approvals::contact_id;
use crate::browser_support::Browser;
use crate::db_tests;
use crate::invitations::start_chat;
use crate::support::Backend;
use axum::body::Body;
use axum::http::Request;
use serde_json::json;

db_tests!(
    a_spanish_speaking_guardian_joins_and_unsubscribes_in_spanish,
    a_guardian_signs_in_in_spanish_through_the_language_links,
);

async fn a_spanish_speaking_guardian_joins_and_unsubscribes_in_spanish(backend: Backend) {
    let Some(browser) = Browser::open(backend).await else {
        return;
    };
    let (api, base) = served(backend).await;
    let linda = contact_id(&api, "nyc", "par-1").await;
    let set = api
        .send(
            Request::patch(format!("/api/v1/students/stu-1/contacts/{linda}"))
                .header("authorization", format!("Bearer {}", api.admin("nyc")))
                .header("content-type", "application/json")
                .body(Body::from(json!({"preferredLanguage": "es"}).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    let chat = start_chat(&api, &[&linda]).await;
    let invitation = chat["invitations"][0]["id"].as_str().unwrap().to_string();
    let url = format!("{base}/join/{}", join_token(&api, &invitation).await);
    browser.visit(&url, "join-es").await;
    let lang = browser.script("return document.documentElement.lang").await;
    assert_eq!(lang, "es");
    let text = browser.text().await;
    assert!(text.contains("Únase a Parent Connection"), "{text}");
    assert!(
        text.contains("Sam Lee le invitó a conversar sobre Ava"),
        "{text}"
    );
    assert!(
        text.contains("Esta invitación es válida hasta el"),
        "{text}"
    );
    browser.tab_to_and_press_within("Aceptar", 10).await;
    browser
        .wait_for_heading("Se unió a Parent Connection")
        .await;
    browser.check("join-es-done").await;

    let url = format!(
        "{base}{}",
        crate::browser::unsubscribe_path(&api, &linda).await
    );
    browser.visit(&url, "unsubscribe-es").await;
    let text = browser.text().await;
    assert!(text.contains("Cancelar el resumen semanal"), "{text}");
    browser
        .tab_to_and_press_within("Cancelar la suscripción", 10)
        .await;
    browser.wait_for_heading("Canceló la suscripción").await;
    browser.check("unsubscribe-es-done").await;
    assert!(
        browser
            .text()
            .await
            .contains("ya no recibirá el resumen semanal")
    );
    browser.close().await;
}

async fn a_guardian_signs_in_in_spanish_through_the_language_links(backend: Backend) {
    let Some(browser) = Browser::open(backend).await else {
        return;
    };
    let (_api, base) = served(backend).await;
    browser
        .visit(
            &format!("{base}/signin/code?tenant=nyc&lang=en"),
            "signin-code-en",
        )
        .await;
    browser.tab_to_and_press_within("Español", 4).await;
    browser
        .wait_for_heading("Iniciar sesión con un código")
        .await;
    let lang = browser.script("return document.documentElement.lang").await;
    assert_eq!(lang, "es");
    browser.check("signin-code-es").await;
    browser.tab_to("f-address", 10).await;
    browser.replace_text("hola").await;
    browser.press(fantoccini::key::Key::Enter).await;
    // The same heading comes back: wait for the summary.
    browser
        .client
        .wait()
        .at_most(std::time::Duration::from_secs(15))
        .for_element(fantoccini::Locator::Css(".error-summary"))
        .await
        .expect("the error summary");
    let text = browser.text().await;
    assert!(text.contains("Hay un problema"), "{text}");
    assert!(text.contains("Escriba su correo electrónico"), "{text}");
    browser.check("signin-code-es-error").await;
    browser.tab_to("f-address", 10).await;
    browser.replace_text("linda.ng@example.com").await;
    browser.press(fantoccini::key::Key::Enter).await;
    browser.wait_for_heading("Escriba su código").await;
    browser.check("signin-code-es-verify").await;
    browser.close().await;
}
