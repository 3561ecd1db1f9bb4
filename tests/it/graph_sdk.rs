//! Microsoft's Graph SDK for Python (`msgraph-sdk`, PyPI) as the client: the script
//! `scripts/acceptance/graph_sdk.py` points the SDK's request adapter at a running server
//! with an app-only token and reads `education/users/{id}?$select=relatedContacts` into the
//! SDK's own model types. Skipped when the SDK is not installed, unless `REQUIRE_MSGRAPH` is
//! set (as `scripts/test.sh` does).

use crate::api_support::*;
use crate::db_tests;
use crate::support::Backend;
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Command;

db_tests!(the_graph_sdk_reads_related_contacts_as_its_own_types);

fn sdk_installed() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import msgraph"])
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var("REQUIRE_MSGRAPH").is_ok() {
        panic!("REQUIRE_MSGRAPH is set but msgraph-sdk cannot be imported by python3");
    }
    found
}

async fn the_graph_sdk_reads_related_contacts_as_its_own_types(backend: Backend) {
    if !sdk_installed() {
        eprintln!("msgraph-sdk not installed: the Graph SDK test is skipped");
        return;
    }
    let api = Api::new(backend).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = api.app.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let token = api.app("nyc", &["EduRoster.Read.All"]);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/acceptance/graph_sdk.py"
    );
    let (base_url, app_token) = (base.clone(), token.clone());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, "--base-url", &base_url, "--student", "stu-1"])
            .env("GRAPH_TOKEN", app_token)
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    server.abort();
    assert!(
        output.status.success(),
        "the SDK read failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed: Value = serde_json::from_slice(&output.stdout).expect("the script prints JSON");
    let served = api
        .get(
            "/education/users/stu-1?$select=relatedContacts",
            Some(&token),
        )
        .await;
    let served = served.ok();
    assert_eq!(parsed["id"], served["id"], "{parsed}");
    let contacts = parsed["relatedContacts"].as_array().unwrap();
    let expected = served["relatedContacts"].as_array().unwrap();
    assert_eq!(contacts.len(), expected.len(), "{parsed}\n{served}");
    assert!(
        contacts.len() >= 4,
        "every role is served to apps: {parsed}"
    );
    for (sdk, ours) in contacts.iter().zip(expected) {
        for field in [
            "id",
            "displayName",
            "emailAddress",
            "mobilePhone",
            "relationship",
            "accessConsent",
        ] {
            assert_eq!(sdk[field], ours[field], "{field}: {sdk} vs {ours}");
        }
    }
    let linda = contacts
        .iter()
        .find(|c| c["displayName"] == "Linda Ng")
        .expect("Linda Ng");
    assert_eq!(linda["relationship"], "parent");
    assert_eq!(linda["emailAddress"], "linda.ng@example.com");
    assert_eq!(linda["mobilePhone"], "+12025550143");
}
