//! The headless-Chromium harness of the browser tests (tests/it/browser*.rs, docs/web.md):
//! chromedriver per test, axe-core's WCAG 2.1 A/AA rules and a screenshot at desktop and
//! phone width on every page visited, keyboard-only helpers, and page sessions.

use crate::support::Backend;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::cookies::Cookie;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value as Json, json};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The WCAG 2.1 A and AA rules of axe-core.
pub(crate) const WCAG_TAGS: [&str; 4] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/// The widths every page is checked and photographed at: desktop and phone.
pub(crate) const WIDTHS: [(u32, u32); 2] = [(1280, 900), (375, 812)];

/// The Chromium flags for a headless run as root in a container, talking to nothing but
/// the server under test (chromedriver gives each session a fresh profile directory).
pub(crate) const CHROMIUM_ARGS: [&str; 10] = [
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
pub(crate) const RUN_AXE: &str = r#"
const [tags, done] = arguments;
axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})
  .then(r => done(r.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map(n => n.target.join(' '))}))))
  .catch(e => done({error: String(e)}));
"#;

/// What the browser tests need, or why they cannot run.
pub(crate) struct Tools {
    chromium: String,
    chromedriver: String,
    axe: String,
}

impl Tools {
    /// The tools, or `None` (after saying why) when one is missing and `REQUIRE_BROWSER` is
    /// not set; panics when it is.
    pub(crate) fn find() -> Option<Self> {
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
pub(crate) struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    pub(crate) fn start(program: &str) -> Self {
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

    pub(crate) fn url(&self) -> String {
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
    pub(crate) engine: &'static str,
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

    pub(crate) async fn script(&self, script: &str) -> Json {
        self.client.execute(script, vec![]).await.expect(script)
    }

    /// Injects axe-core (WebDriver scripts are not subject to the page's CSP) and fails
    /// with a readable list of every violation.
    pub(crate) async fn axe(&self, page: &str) {
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

    pub(crate) async fn screenshot(&self, name: &str, width: u32) {
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
    pub(crate) async fn focused(&self) -> String {
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

    /// Presses Tab until the focused element's text is `label` (at most `stops` times), then
    /// Enter.
    pub(crate) async fn tab_to_and_press_within(&self, label: &str, stops: usize) {
        for _ in 0..stops {
            self.press(Key::Tab).await;
            if self.focused().await == label {
                self.press(Key::Enter).await;
                return;
            }
        }
        panic!("no Tab stop within {stops} reaches {label:?}");
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

    /// Gives the browser the page session `cookie` (`name=value`, from
    /// [`crate::api_support::page_session`]) for the server at `base`.
    pub(crate) async fn sign_in(&self, base: &str, cookie: &str) {
        self.client
            .goto(&format!("{base}/static/web.css"))
            .await
            .expect("the stylesheet");
        // Parsed from text: fantoccini sends `SameSite=None` (refused without `Secure`)
        // unless the cookie names its own.
        let mut cookie =
            Cookie::parse(format!("{cookie}; Path=/; HttpOnly; SameSite=Lax")).expect("a cookie");
        let host = base
            .trim_start_matches("http://")
            .split(':')
            .next()
            .expect("a host");
        cookie.set_domain(host.to_string());
        self.client.add_cookie(cookie).await.expect("cookie set");
    }

    /// The `id` of the focused element.
    pub(crate) async fn focused_id(&self) -> String {
        let element = self.client.active_element().await.expect("focus");
        element.attr("id").await.expect("id").unwrap_or_default()
    }

    /// Presses Tab until the element with `id` has the focus (at most `stops` times).
    pub(crate) async fn tab_to(&self, id: &str, stops: usize) {
        for _ in 0..stops {
            self.press(Key::Tab).await;
            if self.focused_id().await == id {
                return;
            }
        }
        panic!("no Tab stop within {stops} reaches #{id}");
    }

    /// Types `text` into the focused element, replacing what it held.
    pub(crate) async fn replace_text(&self, text: &str) {
        let element = self.client.active_element().await.expect("focus");
        element.clear().await.expect("cleared");
        element.send_keys(text).await.expect("typed");
    }

    /// Ends the session (the driver ends when dropped).
    pub(crate) async fn close(self) {
        self.client.close().await.expect("session closed");
    }
}
