//! Authentication through the real router: missing, malformed, forged, expired, premature,
//! wrong-audience, wrong-issuer, `alg: none` and RS256 tokens; keys from PEM and JWKS files;
//! the algorithm allow-list; unknown tenants.

use crate::api_support::*;
use crate::db_tests;
use crate::support::Backend;
use parent_connection::auth::Role;

const CONTACTS: &str = "/api/v1/students/stu-1/contacts";

/// Every route the OpenAPI document secures with the bearer token (the route table's), and a
/// Graph read with a query, answer 401 without a token.
async fn every_protected_route_needs_a_token(backend: Backend) {
    let api = Api::new(backend).await;
    let doc = api.get("/openapi.json", None).await.ok().clone();
    let mut protected: Vec<(String, String)> = declared_routes()
        .into_iter()
        .filter(|route| route.needs_bearer(&doc))
        .map(|route| (route.method.to_string(), route.uri))
        .collect();
    assert!(protected.len() > 50, "{protected:?}");
    protected.push((
        "GET".into(),
        "/education/users/stu-1?$select=relatedContacts".into(),
    ));
    for (method, path) in protected {
        let reply = api
            .send(
                axum::http::Request::builder()
                    .method(method.as_str())
                    .uri(&path)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.error(401), "unauthenticated", "{method} {path}");
        assert_eq!(reply.headers["www-authenticate"], "Bearer");
    }
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "token abc"] {
        let reply = api
            .send(
                axum::http::Request::get(CONTACTS)
                    .header("authorization", header)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.error(401), "unauthenticated", "{header}");
    }
    for garbage in [
        "abc",
        "a.b.c",
        "....",
        "eyJhbGciOiJIUzI1NiJ9.e30",
        "%%%.@@.!!",
    ] {
        let reply = api.get(CONTACTS, Some(garbage)).await;
        assert_eq!(reply.status.as_u16(), 401, "{garbage}: {}", reply.body);
    }
}

async fn minted_tokens_work_and_forged_ones_do_not(backend: Backend) {
    let api = Api::new(backend).await;
    let admin = claims(&api.config, "nyc", "admin-1", &["global-admin"]);
    // The same claims, correctly signed, pass: the failures below are the forgeries.
    api.get(CONTACTS, Some(&hs256(&admin, SECRET.as_bytes())))
        .await
        .ok();
    api.get(CONTACTS, Some(&api.admin("nyc"))).await.ok();

    let wrong_key = hs256(&admin, b"another-secret-0123456789abcdef0123456789");
    let reply = api.get(CONTACTS, Some(&wrong_key)).await;
    assert_eq!(reply.error(401), "invalid_token");
    assert!(
        reply.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    // A token whose payload was edited after signing.
    let good = api.user("nyc", "tch-1", &[Role::Teacher]);
    let parts: Vec<&str> = good.split('.').collect();
    let edited = claims(&api.config, "nyc", "tch-1", &["global-admin"]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        base64_url(serde_json::to_string(&edited).unwrap().as_bytes()),
        parts[2]
    );
    assert_eq!(
        api.get(CONTACTS, Some(&tampered)).await.error(401),
        "invalid_token"
    );

    let mut expired = admin.clone();
    expired.exp = chrono::Utc::now().timestamp() - 3600;
    expired.iat = expired.exp - 600;
    expired.nbf = Some(expired.iat);
    assert_eq!(
        api.get(CONTACTS, Some(&hs256(&expired, SECRET.as_bytes())))
            .await
            .error(401),
        "token_expired"
    );

    let mut early = admin.clone();
    early.nbf = Some(chrono::Utc::now().timestamp() + 3600);
    early.exp = early.nbf.unwrap() + 600;
    assert_eq!(
        api.get(CONTACTS, Some(&hs256(&early, SECRET.as_bytes())))
            .await
            .error(401),
        "token_not_yet_valid"
    );

    let mut audience = admin.clone();
    audience.aud = parent_connection::auth::claims::Audience::One("someone-else".into());
    assert_eq!(
        api.get(CONTACTS, Some(&hs256(&audience, SECRET.as_bytes())))
            .await
            .error(401),
        "invalid_token"
    );
    // A list of audiences that includes ours is accepted.
    let mut audiences = admin.clone();
    audiences.aud = parent_connection::auth::claims::Audience::Many(vec![
        "other".into(),
        api.config.auth.audience.clone(),
    ]);
    api.get(CONTACTS, Some(&hs256(&audiences, SECRET.as_bytes())))
        .await
        .ok();

    let mut issuer = admin.clone();
    issuer.iss = "https://evil.example".into();
    assert_eq!(
        api.get(CONTACTS, Some(&hs256(&issuer, SECRET.as_bytes())))
            .await
            .error(401),
        "invalid_token"
    );

    // `alg: none`, with and without a signature part.
    let none = alg_none(&admin);
    assert_eq!(
        api.get(CONTACTS, Some(&none)).await.error(401),
        "invalid_token"
    );
    let none_signed = format!("{none}{}", good.split('.').nth(2).unwrap());
    assert_eq!(
        api.get(CONTACTS, Some(&none_signed)).await.error(401),
        "invalid_token"
    );

    // A token without `exp`.
    let mut no_exp = serde_json::to_value(&admin).unwrap();
    no_exp.as_object_mut().unwrap().remove("exp");
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &no_exp,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(api.get(CONTACTS, Some(&token)).await.status.as_u16(), 401);

    // A token for a tenant that does not exist.
    let ghost = claims(&api.config, "atlantis", "admin-1", &["global-admin"]);
    assert_eq!(
        api.get(CONTACTS, Some(&hs256(&ghost, SECRET.as_bytes())))
            .await
            .error(401),
        "invalid_token"
    );
}

async fn rs256_keys_from_pem_and_jwks(backend: Backend) {
    let api = Api::new(backend).await;
    let admin = claims(&api.config, "nyc", "admin-1", &["global-admin"]);
    // Key a is configured as a PEM public key.
    api.get(CONTACTS, Some(&rs256(&admin, "a", None)))
        .await
        .ok();
    // Key b is not.
    assert_eq!(
        api.get(CONTACTS, Some(&rs256(&admin, "b", None)))
            .await
            .error(401),
        "invalid_token"
    );
    // Key confusion: an HS256 token "signed" with the RS256 public key as the secret.
    let public = std::fs::read(key("rs256-a.pub.pem")).unwrap();
    assert_eq!(
        api.get(CONTACTS, Some(&hs256(&admin, &public)))
            .await
            .error(401),
        "invalid_token"
    );

    // JWKS only, production style: RS256 only, chosen by kid, development off.
    let jwks = Api::with(backend, |config| {
        config.auth.development = false;
        config.auth.algorithms = vec!["RS256".into()];
        config.auth.rs256_public_key_paths = vec![];
        config.auth.jwks_path = key("jwks-a.json");
    })
    .await;
    jwks.get(CONTACTS, Some(&rs256(&admin, "a", Some("key-a"))))
        .await
        .ok();
    jwks.get(CONTACTS, Some(&rs256(&admin, "a", None)))
        .await
        .ok();
    assert_eq!(
        jwks.get(CONTACTS, Some(&rs256(&admin, "a", Some("key-z"))))
            .await
            .error(401),
        "invalid_token"
    );
    assert_eq!(
        jwks.get(CONTACTS, Some(&rs256(&admin, "b", Some("key-a"))))
            .await
            .error(401),
        "invalid_token"
    );
    // HS256 is off outside development, even with the right secret.
    assert_eq!(
        jwks.get(CONTACTS, Some(&hs256(&admin, SECRET.as_bytes())))
            .await
            .error(401),
        "invalid_token"
    );
}

db_tests!(
    every_protected_route_needs_a_token,
    minted_tokens_work_and_forged_ones_do_not,
    rs256_keys_from_pem_and_jwks,
);
