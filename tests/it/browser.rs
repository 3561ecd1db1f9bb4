//! The pages in a real browser (issue 18, items 5 and 6): headless Chromium driven through
//! chromedriver with `fantoccini`, against the real server on loopback. On every page a test
//! visits, axe-core (`axe.min.js`, npm) checks the WCAG 2.1 A and AA rules at desktop (1280)
//! and phone (375) width and the test fails on any violation, listing rule, impact and
//! targets; a screenshot of each page at each width goes to `target/screenshots/`
//! (`{page}-{width}-{engine}.png`). The forms are used with the keyboard only (Tab, Enter).
//!
//! The browser tests are skipped, saying why, when chromium, chromedriver or axe-core is
//! missing — unless `REQUIRE_BROWSER` is set (as `scripts/test.sh` does). Found through
//! `CHROMIUM` (default `/usr/bin/chromium`), `CHROMEDRIVER` (default `chromedriver`) and
//! `AXE_JS` (default `target/npm/node_modules/axe-core/axe.min.js`, where `scripts/test.sh`
//! installs it). The security headers of the pages are checked without a browser.

use crate::api_support::*;
use crate::approvals::{contact_id, patch_settings};
use crate::db_tests;
use crate::invitations::start_chat;
use crate::support::Backend;
use axum::body::Body;
use axum::http::Request;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use parent_connection::auth::Role;
use parent_connection::links::{self, Purpose};
use parent_connection::tenants;
use sea_orm::Value;
use serde_json::{Value as Json, json};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

db_tests!(
    every_page_response_carries_the_security_headers,
    a_guardian_accepts_an_invitation_with_the_keyboard,
    a_guardian_unsubscribes_with_the_keyboard,
);

/// The WCAG 2.1 A and AA rules of axe-core.
const WCAG_TAGS: [&str; 4] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/// The widths every page is checked and photographed at: desktop and phone.
const WIDTHS: [(u32, u32); 2] = [(1280, 900), (375, 812)];

/// The Chromium flags for a headless run as root in a container, talking to nothing but
/// the server under test (chromedriver gives each session a fresh profile directory).
const CHROMIUM_ARGS: [&str; 10] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-extensions",
    "--window-size=1280,900",
];

/// Runs axe on the document with the WCAG 2.1 A/AA tags (`arguments[0]`) and answers its
/// violations as `{id, impact, help, targets}`, or `{error}`.
const RUN_AXE: &str = r#"
const [tags, done] = arguments;
axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})
  .then(r => done(r.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map(n => n.target.join(' '))}))))
  .catch(e => done({error: String(e)}));
"#;

/// What the browser tests need, or why they cannot run.
struct Tools {
    chromium: String,
    chromedriver: String,
    axe: String,
}

impl Tools {
    /// The tools, or `None` (after saying why) when one is missing and `REQUIRE_BROWSER` is
    /// not set; panics when it is.
    fn find() -> Option<Self> {
        match Self::locate() {
            Ok(tools) => Some(tools),
            Err(why) if std::env::var_os("REQUIRE_BROWSER").is_some() => {
                panic!("REQUIRE_BROWSER is set but {why}")
            }
            Err(why) => {
                eprintln!("browser test skipped: {why}");
                None
            }
        }
    }

    fn locate() -> Result<Self, String> {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        if !PathBuf::from(&chromium).is_file() {
            return Err(format!(
                "{chromium} is missing (Debian package chromium; or set CHROMIUM)"
            ));
        }
        let chromedriver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let runs = Command::new(&chromedriver)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !runs {
            return Err(format!(
                "`{chromedriver}` cannot be run (Debian package chromium-driver; or set CHROMEDRIVER)"
            ));
        }
        let path = std::env::var("AXE_JS")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("target/npm/node_modules/axe-core/axe.min.js")
            });
        let axe = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "axe-core is missing: {} ({e}; `npm install --prefix target/npm axe-core`, or set AXE_JS)",
                path.display()
            )
        })?;
        Ok(Self {
            chromium,
            chromedriver,
            axe,
        })
    }
}

/// A chromedriver process on a free loopback port; dropping it ends its browsers
/// (`/shutdown` quits every session) and the process, also when a test fails.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(program: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = stream.write_all(
                b"GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh headless Chromium session with axe-core at hand, for one test.
pub(crate) struct Browser {
    pub(crate) client: Client,
    axe: String,
    engine: &'static str,
    // Last: dropped after the client, ending the browser.
    _driver: Driver,
}

impl Browser {
    /// A browser, or `None` when the tools are missing (see [`Tools::find`]).
    pub(crate) async fn open(backend: Backend) -> Option<Self> {
        let tools = Tools::find()?;
        let driver = Driver::start(&tools.chromedriver);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"binary": tools.chromium, "args": CHROMIUM_ARGS}),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url())
            .await
            .unwrap_or_else(|e| panic!("a Chromium session through chromedriver: {e}"));
        let engine = match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        Some(Self {
            client,
            axe: tools.axe,
            engine,
            _driver: driver,
        })
    }

    /// Opens `url` and checks the page (see [`Browser::check`]).
    pub(crate) async fn visit(&self, url: &str, name: &str) {
        self.client.goto(url).await.expect(url);
        self.check(name).await;
    }

    /// At each width: the stylesheet applies under the page's CSP, axe finds no WCAG 2.1
    /// A/AA violation, and a screenshot is saved.
    pub(crate) async fn check(&self, name: &str) {
        for (width, height) in WIDTHS {
            self.client
                .set_window_size(width, height)
                .await
                .expect("window size");
            let styled = self
                .script(
                    "return getComputedStyle(document.querySelector('header.site')).backgroundColor",
                )
                .await;
            assert_eq!(
                styled,
                json!("rgb(18, 53, 91)"),
                "{name}: the stylesheet did not apply"
            );
            self.axe(&format!("{name} at {width} px")).await;
            self.screenshot(name, width).await;
        }
    }

    async fn script(&self, script: &str) -> Json {
        self.client.execute(script, vec![]).await.expect(script)
    }

    /// Injects axe-core (WebDriver scripts are not subject to the page's CSP) and fails
    /// with a readable list of every violation.
    async fn axe(&self, page: &str) {
        self.client
            .execute(&self.axe, vec![])
            .await
            .expect("axe-core loads");
        let found = self
            .client
            .execute_async(RUN_AXE, vec![json!(WCAG_TAGS)])
            .await
            .expect("axe runs");
        let violations = found
            .as_array()
            .unwrap_or_else(|| panic!("{page}: axe failed: {found}"));
        let listed: Vec<String> = violations
            .iter()
            .map(|v| {
                format!(
                    "- {} ({}): {} — {}",
                    v["id"].as_str().unwrap_or("?"),
                    v["impact"].as_str().unwrap_or("?"),
                    v["help"].as_str().unwrap_or(""),
                    v["targets"]
                )
            })
            .collect();
        assert!(
            listed.is_empty(),
            "{page}: {} axe violation(s) of WCAG 2.1 A/AA:\n{}",
            listed.len(),
            listed.join("\n")
        );
    }

    async fn screenshot(&self, name: &str, width: u32) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
            .join("screenshots");
        std::fs::create_dir_all(&dir).expect("target/screenshots");
        let path = dir.join(format!("{name}-{width}-{}.png", self.engine));
        std::fs::write(&path, png).expect("screenshot saved");
    }

    /// Presses and releases `key`.
    pub(crate) async fn press(&self, key: Key) {
        let value = char::from(key);
        let keys = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value })
            .then(KeyAction::Up { value });
        self.client.perform_actions(keys).await.expect("key press");
    }

    /// The text of the focused element.
    async fn focused(&self) -> String {
        let element = self.client.active_element().await.expect("focus");
        element.text().await.expect("focused text")
    }

    /// Tabs from the top of the page: first to the skip link, then on to the button
    /// labelled `label` (at most five stops), and presses Enter on it.
    pub(crate) async fn tab_to_and_press(&self, label: &str) {
        self.press(Key::Tab).await;
        assert_eq!(
            self.focused().await,
            "Skip to content",
            "the first Tab stop"
        );
        for _ in 0..5 {
            self.press(Key::Tab).await;
            if self.focused().await == label {
                self.press(Key::Enter).await;
                return;
            }
        }
        panic!("no Tab stop reaches {label:?}");
    }

    /// Waits for the page whose `<h1>` contains `heading`.
    pub(crate) async fn wait_for_heading(&self, heading: &str) {
        let xpath = format!("//h1[contains(., '{heading}')]");
        self.client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no page headed {heading:?}: {e}"));
    }

    /// The visible text of the page.
    pub(crate) async fn text(&self) -> String {
        let body = self.client.find(Locator::Css("body")).await.expect("body");
        body.text().await.expect("body text")
    }

    /// Ends the session (the driver ends when dropped).
    pub(crate) async fn close(self) {
        self.client.close().await.expect("session closed");
    }
}

/// The digest's unsubscribe path of `nyc`'s contact `contact` (its id), signed as the
/// digest signs it.
async fn unsubscribe_path(api: &Api, contact: &str) -> String {
    let tenant = tenants::find(&api.db.conn, "nyc").await.unwrap().id;
    let secret = links::tenant_secret(&api.db.conn, tenant)
        .await
        .unwrap()
        .expect("a link secret");
    let contact: i64 = contact.parse().unwrap();
    let token = links::sign(&secret, Purpose::DigestUnsubscribe, tenant, contact);
    format!("/unsubscribe/{token}")
}

async fn count(api: &Api, sql: &str) -> i64 {
    api.db.count(sql).await
}

/// Every page response — pages, notices, HTML errors, the stylesheet — carries the CSP
/// (no script), `no-referrer`, `nosniff` and no framing; the API keeps its JSON bodies.
async fn every_page_response_carries_the_security_headers(backend: Backend) {
    let api = Api::new(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let chat = start_chat(&api, &[&par1]).await;
    let id = chat["invitations"][0]["id"].as_str().unwrap().to_string();
    let join = format!("/join/{}", join_token(&api, &id).await);
    let unsubscribe = unsubscribe_path(&api, &par1).await;
    let requests = [
        ("GET", join.as_str(), 200, "text/html"),
        ("GET", unsubscribe.as_str(), 200, "text/html"),
        ("GET", "/static/web.css", 200, "text/css"),
        (
            "GET",
            "/join/0123456789abcdef0123456789abcdef",
            404,
            "text/html",
        ),
        ("GET", "/join/", 404, "text/html"),
        ("GET", "/unsubscribe/AAAA", 404, "text/html"),
        ("PUT", "/join/abc", 405, "text/html"),
        ("GET", "/static/none.css", 404, "text/html"),
        ("POST", join.as_str(), 200, "text/html"),
    ];
    for (method, path, status, content_type) in requests {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::empty())
            .unwrap();
        let reply = api.send(request).await;
        let header = |name: &str| {
            reply
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{method} {path}: {}",
            reply.body
        );
        assert!(
            header("content-type").starts_with(content_type),
            "{method} {path}: {:?}",
            reply.headers
        );
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'none'",
            "style-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{method} {path}: CSP {csp:?}");
        }
        assert!(!csp.contains("unsafe"), "{method} {path}: CSP {csp:?}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{method} {path}");
        assert_eq!(
            header("x-content-type-options"),
            "nosniff",
            "{method} {path}"
        );
        assert_eq!(header("x-frame-options"), "DENY", "{method} {path}");
        if content_type == "text/html" {
            let page = reply.body.as_str().unwrap_or_default();
            assert!(!page.contains("<script"), "{method} {path}: inline script");
            assert!(!page.contains("style="), "{method} {path}: inline style");
            assert!(!page.contains("<style"), "{method} {path}: inline style");
        }
    }
    // The API keeps its own JSON answers, with `nosniff` too.
    let reply = api.get("/api/v1/no-such-route", None).await;
    assert_eq!(reply.status.as_u16(), 404);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.code(), "not_found");
    assert_eq!(reply.headers["x-content-type-options"], "nosniff");
    let reply = api.get("/api/v1/classes", Some(&api.teacher())).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.headers["x-content-type-options"], "nosniff");
    assert!(!reply.headers.contains_key("content-security-policy"));
}

/// A guardian opens the join link, tabs to Accept and presses Enter; the result page, the
/// database and the notices of an expired and an unknown invitation are checked.
async fn a_guardian_accepts_an_invitation_with_the_keyboard(backend: Backend) {
    let Some(browser) = Browser::open(backend).await else {
        return;
    };
    let (api, base) = served(backend).await;
    let (par1, par2) = (
        contact_id(&api, "nyc", "par-1").await,
        contact_id(&api, "nyc", "par-2").await,
    );
    let chat = start_chat(&api, &[&par1, &par2]).await;
    let ids: Vec<String> = chat["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{chat}");
    let url = format!("{base}/join/{}", join_token(&api, &ids[0]).await);
    browser.visit(&url, "join").await;
    let text = browser.text().await;
    assert!(text.contains("Join Parent Connection"), "{text}");
    assert!(text.contains("invited you to chat about"), "{text}");
    assert!(text.contains("Accept"), "{text}");
    assert_eq!(
        count(
            &api,
            "SELECT COUNT(*) FROM contacts WHERE joined_at IS NOT NULL"
        )
        .await,
        0,
        "opening the page changes nothing"
    );
    browser.tab_to_and_press("Accept").await;
    browser.wait_for_heading("You joined").await;
    browser.check("join-accepted").await;
    let text = browser.text().await;
    assert!(text.contains("You accepted"), "{text}");
    assert_eq!(
        count(
            &api,
            "SELECT COUNT(*) FROM invitations WHERE accepted_at IS NOT NULL"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &api,
            "SELECT COUNT(*) FROM contacts WHERE joined_at IS NOT NULL"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &api,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'invitation.accept'"
        )
        .await,
        1,
        "accepted once, audited once"
    );
    browser.visit(&url, "join-already").await;
    assert!(browser.text().await.contains("already accepted"));
    // par-2's invitation is 4 days old with 3 days' validity: expired.
    let tenant_admin = api.user("nyc", "ta-1", &[Role::TenantAdmin]);
    patch_settings(&api, &tenant_admin, json!({"invitationValidityDays": 3}))
        .await
        .ok();
    parent_connection::db::exec(
        &api.db.conn,
        "UPDATE invitations SET created_at = $1 WHERE id = $2",
        vec![
            Value::ChronoDateTimeUtc(Some(chrono::Utc::now() - chrono::Duration::days(4))),
            Value::BigInt(Some(ids[1].parse().unwrap())),
        ],
    )
    .await
    .unwrap();
    let expired = format!("{base}/join/{}", join_token(&api, &ids[1]).await);
    browser.visit(&expired, "join-expired").await;
    assert!(browser.text().await.contains("This invitation has expired"));
    browser
        .visit(
            &format!("{base}/join/0123456789abcdef0123456789abcdef"),
            "join-unknown",
        )
        .await;
    assert!(browser.text().await.contains("Invitation not found"));
    browser.close().await;
}

/// A guardian opens the digest's unsubscribe link, tabs to Unsubscribe and presses Enter;
/// the result page, the database and the page seen again are checked.
async fn a_guardian_unsubscribes_with_the_keyboard(backend: Backend) {
    let Some(browser) = Browser::open(backend).await else {
        return;
    };
    let (api, base) = served(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let url = format!("{base}{}", unsubscribe_path(&api, &par1).await);
    browser.visit(&url, "unsubscribe").await;
    let text = browser.text().await;
    assert!(
        text.contains("Unsubscribe from the weekly summary"),
        "{text}"
    );
    assert_eq!(
        count(&api, "SELECT COUNT(*) FROM digest_unsubscribes").await,
        0,
        "opening the page changes nothing"
    );
    browser.tab_to_and_press("Unsubscribe").await;
    browser.wait_for_heading("You are unsubscribed").await;
    browser.check("unsubscribe-done").await;
    let text = browser.text().await;
    assert!(text.contains("will not receive the weekly"), "{text}");
    assert_eq!(
        count(&api, "SELECT COUNT(*) FROM digest_unsubscribes").await,
        1
    );
    assert_eq!(
        count(
            &api,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'digest.unsubscribe'"
        )
        .await,
        1
    );
    browser.visit(&url, "unsubscribe-already").await;
    let text = browser.text().await;
    assert!(text.contains("does not receive the weekly"), "{text}");
    browser
        .visit(&format!("{base}/unsubscribe/AAAA"), "unsubscribe-unknown")
        .await;
    assert!(browser.text().await.contains("Link not valid"));
    browser.close().await;
}
