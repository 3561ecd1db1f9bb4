//! Staff sign-in against a real OpenID Connect provider (issue 18, item 1): `oidc-provider`
//! (npm, v9) run by `tests/oidc/provider.mjs` on a loopback port with PKCE required and
//! its development login form, and the service served on another port with `[web.oidc]`
//! pointing at it. The flow is the real one: `/web/oidc/start` → the provider's login form
//! → `/web/oidc/callback` → the page asked for.
//!
//! Skipped, saying why, when Node or the module is missing — unless `REQUIRE_OIDC` is set
//! (as `scripts/test.sh` does). The module is found in `OIDC_PROVIDER_DIR` (default
//! `target/npm`, where `scripts/test.sh` installs it).

use crate::api_support::*;
use crate::browser_support::Browser;
use crate::db_tests;
use crate::support::Backend;
use fantoccini::Locator;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

db_tests!(
    the_signin_page_offers_what_is_configured,
    a_teacher_signs_in_with_the_district_provider,
    refused_sign_ins_are_clear_pages,
    a_tenant_admin_signs_in_with_the_keyboard,
);

/// Our client at the provider.
const CLIENT_ID: &str = "parent-connection";
const CLIENT_SECRET: &str = "test-client-secret-0123456789";

/// The provider's accounts: the login typed into its form is the `sub`.
const ACCOUNTS: &str = r#"{
  "tch-1": {"tenant": "nyc", "roles": ["teacher"], "name": "Tess Teacher"},
  "ta-1": {"tenant": "nyc", "roles": ["tenant-admin", "unrelated"], "name": "Tara Admin"},
  "lost-1": {"tenant": "atlantis", "roles": ["teacher"], "name": "Lou Lost"},
  "pupil-1": {"tenant": "nyc", "roles": ["student"], "name": "Pat Pupil"}
}"#;

/// `node` and the folder holding `node_modules/oidc-provider`, or why they are missing.
fn locate() -> Result<PathBuf, String> {
    let dir = std::env::var_os("OIDC_PROVIDER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/npm"));
    let runs = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !runs {
        return Err("`node` cannot be run (Node.js 20 or later)".into());
    }
    if !dir
        .join("node_modules/oidc-provider/package.json")
        .is_file()
    {
        return Err(format!(
            "oidc-provider is missing in {} (`npm install --prefix target/npm oidc-provider@9`, or set OIDC_PROVIDER_DIR)",
            dir.display()
        ));
    }
    Ok(dir)
}

/// A running `oidc-provider`; dropping it ends the process.
struct Idp {
    child: Child,
    issuer: String,
}

impl Idp {
    /// Starts the provider for our `redirect_uri`, or `None` (after saying why) when it
    /// cannot run and `REQUIRE_OIDC` is not set.
    fn start(redirect_uri: &str) -> Option<Self> {
        let dir = match locate() {
            Ok(dir) => dir,
            Err(why) if std::env::var_os("REQUIRE_OIDC").is_some() => {
                panic!("REQUIRE_OIDC is set but {why}")
            }
            Err(why) => {
                eprintln!("OIDC test skipped: {why}");
                return None;
            }
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc/provider.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .arg(port.to_string())
            .args([CLIENT_ID, CLIENT_SECRET, redirect_uri])
            .env("OIDC_PROVIDER_DIR", dir)
            .env("OIDC_ACCOUNTS", ACCOUNTS)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .expect("the provider's first line");
        // The provider writes notices to stdout as it goes: a closed pipe would end it.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let idp = Self {
            child,
            issuer: format!("http://127.0.0.1:{port}"),
        };
        assert_eq!(line.trim(), "listening", "the provider did not start");
        Some(idp)
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The service on a loopback port with `[web.oidc]` pointing at a fresh provider (and
/// `web.token_signin` as given): the API (its database), our base URL and the provider.
async fn served_with_idp(backend: Backend, token_signin: bool) -> Option<(Api, String, Idp)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let idp = Idp::start(&format!("{base}/web/oidc/callback"))?;
    let (public, issuer) = (base.clone(), idp.issuer.clone());
    let api = Api::with(backend, move |config| {
        config.web.public_url = public;
        config.web.token_signin = token_signin;
        let oidc = &mut config.web.oidc;
        oidc.issuer = issuer;
        oidc.client_id = CLIENT_ID.into();
        oidc.client_secret = CLIENT_SECRET.into();
        oidc.scopes.push("roles".into());
    })
    .await;
    let app = api.app.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Some((api, base, idp))
}

/// A response as the tests read it.
#[derive(Debug)]
struct Page {
    status: StatusCode,
    location: Option<String>,
    csp: Option<String>,
    body: String,
}

/// A browser without script: cookies by name (the provider's and ours differ) with their
/// path, redirects followed by hand so each hop can be seen.
struct Agent {
    http: reqwest::Client,
    cookies: BTreeMap<String, (String, String)>,
}

impl Agent {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self, url: &reqwest::Url) -> String {
        self.cookies
            .iter()
            .filter(|(_, (_, path))| url.path().starts_with(path.as_str()))
            .map(|(name, (value, _))| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let value = value.to_str().unwrap();
            let mut parts = value.split(';');
            let (name, cookie) = parts.next().unwrap().trim().split_once('=').unwrap();
            let attribute = |key: &str| {
                value.split(';').find_map(|p| {
                    let (k, v) = p.trim().split_once('=')?;
                    k.eq_ignore_ascii_case(key).then(|| v.to_string())
                })
            };
            let path = attribute("path").unwrap_or_else(|| "/".into());
            if cookie.is_empty() || attribute("max-age").as_deref() == Some("0") {
                self.cookies.remove(name);
            } else {
                self.cookies
                    .insert(name.to_string(), (cookie.to_string(), path));
            }
        }
    }

    /// One request (`form`: a POST), without following a redirect.
    async fn request(&mut self, url: &str, form: Option<&[(&str, &str)]>) -> Page {
        let url = reqwest::Url::parse(url).expect(url);
        let builder = match form {
            Some(form) => self.http.post(url.clone()).form(form),
            None => self.http.get(url.clone()),
        };
        let response = builder
            .header(COOKIE, self.cookie_header(&url))
            .send()
            .await
            .expect("a response");
        self.keep(&response);
        let location = response
            .headers()
            .get(LOCATION)
            .map(|l| url.join(l.to_str().unwrap()).unwrap().to_string());
        let csp = response
            .headers()
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap().to_string());
        Page {
            status: response.status(),
            location,
            csp,
            // Our pages escape quotes; the assertions read them as text.
            body: response.text().await.unwrap().replace("&#39;", "'"),
        }
    }

    /// Follows redirects from `url` until a page, or until the next hop starts with `stop`
    /// (answering that hop's URL in `location`).
    async fn follow(&mut self, url: &str, stop: &str) -> Page {
        let mut page = self.request(url, None).await;
        for _ in 0..10 {
            match page.location.clone() {
                Some(next) if next.starts_with(stop) => return page,
                Some(next) => page = self.request(&next, None).await,
                None => return page,
            }
        }
        panic!("too many redirects from {url}");
    }

    /// From `/web/oidc/start?next=…` to the provider's login form, submitted as `login`:
    /// answers the provider's redirect to our callback (its URL in `location`).
    async fn through_provider(&mut self, base: &str, idp: &Idp, login: &str, next: &str) -> Page {
        let start = format!("{base}/web/oidc/start?next={next}");
        let form = self.follow(&start, base).await;
        if form
            .location
            .as_deref()
            .is_some_and(|l| l.starts_with(base))
        {
            return form; // signed in at the provider already: no form
        }
        assert_eq!(form.status, StatusCode::OK, "the login form: {form:?}");
        let action = form_action(&form.body);
        let action = reqwest::Url::parse(&idp.issuer)
            .unwrap()
            .join(&action)
            .unwrap()
            .to_string();
        let fields = [("prompt", "login"), ("login", login), ("password", "any")];
        let mut page = self.request(&action, Some(&fields)).await;
        while let Some(next) = page.location.clone().filter(|l| !l.starts_with(base)) {
            page = self.request(&next, None).await;
        }
        let callback = page.location.clone().expect("a redirect to our callback");
        assert!(
            callback.starts_with(&format!("{base}/web/oidc/callback?")),
            "{callback}"
        );
        page
    }
}

/// The `action` of the first form in `html`.
fn form_action(html: &str) -> String {
    let start = html.find("action=\"").expect("a form") + "action=\"".len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].replace("&amp;", "&")
}

/// Without `[web.oidc]` the sign-in page says staff sign-in is not configured and
/// `/web/oidc/start` is a 404 page; with `web.token_signin` its development form posts a
/// token to `/web/session`, which comes back to `next` signed in.
async fn the_signin_page_offers_what_is_configured(backend: Backend) {
    let api = Api::with(backend, |config| config.web.token_signin = true).await;
    let page = api.get("/signin?next=/admin/settings", None).await;
    assert_eq!(page.status.as_u16(), 200, "{}", page.body);
    let html = page.body.as_str().unwrap().replace("&#39;", "'");
    assert!(html.contains("Staff sign-in is not configured"), "{html}");
    assert!(!html.contains("/web/oidc/start"), "{html}");
    assert!(html.contains("id=\"guardian-signin\""), "{html}");
    let action = "/web/session?next=%2Fadmin%2Fsettings";
    assert!(html.contains(&format!("action=\"{action}\"")), "{html}");
    assert!(
        html.contains("<label for=\"token\">Token</label>"),
        "{html}"
    );
    let token = api.user("nyc", "ta-1", &[parent_connection::auth::Role::TenantAdmin]);
    let form = axum::http::Request::post(action)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(format!("token={token}")))
        .unwrap();
    let signed_in = api.send(form).await;
    assert_eq!(signed_in.status.as_u16(), 303, "{}", signed_in.body);
    assert_eq!(signed_in.headers["location"], "/admin/settings");
    let start = api.get("/web/oidc/start", None).await;
    assert_eq!(start.status.as_u16(), 404, "{}", start.body);
    assert!(
        start.body.as_str().unwrap().contains("not configured"),
        "{}",
        start.body
    );
}

/// A teacher signs in: the provider's form, back to our callback, a session for them and
/// the page asked for; the callback used again, or with a wrong state, is refused.
async fn a_teacher_signs_in_with_the_district_provider(backend: Backend) {
    let Some((api, base, idp)) = served_with_idp(backend, false).await else {
        return;
    };
    let mut agent = Agent::new();
    let signin = agent.request(&format!("{base}/signin"), None).await;
    assert_eq!(signin.status, StatusCode::OK);
    assert_eq!(
        signin.csp.as_deref(),
        Some(parent_connection::web::CONTENT_SECURITY_POLICY)
    );
    assert!(
        signin.body.contains("href=\"/web/oidc/start\""),
        "{}",
        signin.body
    );
    let at_provider = agent.through_provider(&base, &idp, "tch-1", "/").await;
    let callback = at_provider.location.unwrap();
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM oidc_attempts").await,
        1,
        "the attempt waits server-side"
    );
    let state_cookie = agent.cookies["pc_oidc_state"].0.clone();
    let done = agent.request(&callback, None).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some(format!("{base}/").as_str()));
    assert!(!agent.cookies.contains_key("pc_oidc_state"), "cleared");
    assert!(
        agent.cookies.contains_key("pc_session"),
        "{:?}",
        agent.cookies
    );
    let home = agent.request(&format!("{base}/"), None).await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(
        home.body
            .contains("You are signed in as tch-1 (teacher) · nyc"),
        "{}",
        home.body
    );
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM web_sessions WHERE method = 'oidc' AND subject = 'tch-1' AND roles = 'teacher'")
            .await,
        1
    );
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM audit_log WHERE action = 'web.sign_in' AND actor LIKE '%tch-1@nyc'")
            .await,
        1
    );
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM oidc_attempts").await,
        0,
        "single use"
    );
    // The same callback again, with the state cookie put back: the attempt is gone.
    agent
        .cookies
        .insert("pc_oidc_state".into(), (state_cookie, "/web/oidc/".into()));
    let replay = agent.request(&callback, None).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.body);
    assert!(replay.body.contains("already used"), "{}", replay.body);
    assert!(replay.body.contains("Try again"), "{}", replay.body);
    assert_eq!(
        replay.csp.as_deref(),
        Some(parent_connection::web::CONTENT_SECURITY_POLICY),
        "an error page is a page"
    );
    // A new attempt answered with another state.
    let at_provider = agent.through_provider(&base, &idp, "tch-1", "/").await;
    let mut url = reqwest::Url::parse(&at_provider.location.unwrap()).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" { "forged".into() } else { v };
            (k.into_owned(), v.into_owned())
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let wrong = agent.request(url.as_str(), None).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    assert!(wrong.body.contains("cannot be finished"), "{}", wrong.body);
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM oidc_attempts").await,
        1,
        "the real attempt is untouched"
    );
}

/// People the service cannot admit, and a cancelled sign-in, get pages saying why.
async fn refused_sign_ins_are_clear_pages(backend: Backend) {
    let Some((_api, base, idp)) = served_with_idp(backend, false).await else {
        return;
    };
    for (login, status, says) in [
        (
            "lost-1",
            StatusCode::FORBIDDEN,
            "belongs to 'atlantis', which is not set up",
        ),
        (
            "pupil-1",
            StatusCode::FORBIDDEN,
            "the roles it lists in 'roles' (student)",
        ),
    ] {
        let mut agent = Agent::new();
        let callback = agent.through_provider(&base, &idp, login, "/").await;
        let page = agent.request(&callback.location.unwrap(), None).await;
        assert_eq!(page.status, status, "{login}: {}", page.body);
        assert!(page.body.contains(says), "{login}: {}", page.body);
        assert!(page.body.contains("Try again"), "{login}: {}", page.body);
        assert!(page.body.starts_with("<!doctype html>"), "{login}: a page");
    }
    // Cancelled at the provider: its abort link answers `error=access_denied`.
    let mut agent = Agent::new();
    let form = agent
        .follow(&format!("{base}/web/oidc/start?next=/x"), &base)
        .await;
    let uid_action = form_action(&form.body);
    let abort = reqwest::Url::parse(&idp.issuer)
        .unwrap()
        .join(&format!("{uid_action}/abort"))
        .unwrap();
    let denied = agent.follow(abort.as_str(), &format!("{base}/")).await;
    let callback = denied.location.expect("back to our callback");
    assert!(callback.contains("error=access_denied"), "{callback}");
    let page = agent.request(&callback, None).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(
        page.body.contains("did not let you sign in"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("href=\"/signin?next=/x\""),
        "{}",
        page.body
    );
}

/// A tenant admin opens `/admin/settings` without a session, lands on the sign-in page
/// (axe, screenshots; with both staff sign-ins on it), presses "Sign in with your district account" with the keyboard,
/// fills the provider's form and comes back to the settings page signed in.
async fn a_tenant_admin_signs_in_with_the_keyboard(backend: Backend) {
    let Some(browser) = Browser::open(backend).await else {
        return;
    };
    let Some((api, base, _idp)) = served_with_idp(backend, true).await else {
        return;
    };
    browser
        .visit(&format!("{base}/admin/settings"), "signin")
        .await;
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(
        (url.path(), url.query()),
        ("/signin", Some("next=/admin/settings")),
        "sent to sign in"
    );
    assert!(
        browser
            .text()
            .await
            .contains("Sign in with your district account"),
        "{}",
        browser.text().await
    );
    browser
        .tab_to_and_press("Sign in with your district account")
        .await;
    let login = browser
        .client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("input[name=login]"))
        .await
        .expect("the provider's login form");
    login.send_keys("ta-1").await.unwrap();
    let password = browser
        .client
        .find(Locator::Css("input[name=password]"))
        .await
        .unwrap();
    password.send_keys("any").await.unwrap();
    browser.press(fantoccini::key::Key::Enter).await;
    browser.wait_for_heading("Settings").await;
    assert_eq!(
        browser.client.current_url().await.unwrap().as_str(),
        format!("{base}/admin/settings")
    );
    let text = browser.text().await;
    assert!(text.contains("ta-1 (tenant-admin) · nyc"), "{text}");
    // Signed in through the provider, the tenant admin sets the channel to SMS.
    browser.tab_to("f-preferred-invite-channel", 25).await;
    browser.press(fantoccini::key::Key::Down).await;
    browser.tab_to_and_press_within("Save", 30).await;
    browser
        .client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("p.status"))
        .await
        .expect("the saved notice");
    let channel = api
        .db
        .texts(
            "SELECT s.preferred_invite_channel FROM tenant_settings s JOIN tenants t ON t.id = s.tenant_id WHERE t.slug = 'nyc'",
            vec![],
        )
        .await;
    assert_eq!(channel, ["sms"]);
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM audit_log WHERE action = 'settings.update' AND actor = 'web:user:ta-1@nyc'")
            .await,
        1
    );
    browser.close().await;
}
