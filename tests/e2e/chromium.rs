//! The browser harness: Debian's headless Chromium, driven over WebDriver
//! by `fantoccini` through a `chromedriver` child process of each test.
//!
//! A browser test starts with [`Browser::start`], which answers `None`
//! (after printing `skipped: <why>`) when Chromium or chromedriver is not
//! installed, unless `FULFILLMENT_REQUIRE_BROWSER=1` (CI), when the test
//! fails instead: a machine that was meant to run them never passes by
//! skipping. `scripts/setup` installs both.
//!
//! One Chromium at a time in the whole test process (a semaphore): a
//! browser is heavy, the machines have two cores, and the other tests of
//! the binary run meanwhile. Screenshots go to
//! `target/test-artifacts/browser/<name>.png`, for a person to look at.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::error::{CmdError, ErrorStatus};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, SemaphorePermit};

pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Set to 1 where the browser tests must run (CI): missing browsers fail.
pub(crate) const REQUIRE_BROWSER_VARIABLE: &str = "FULFILLMENT_REQUIRE_BROWSER";

/// How long a page, an element or a state the test waits for may take.
const PATIENCE: Duration = Duration::from_secs(15);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);
/// How many times chromedriver's `/status` is asked before giving up
/// (with [`POLL`] between: 10 s while it refuses connections, as it does
/// until it listens; each ask may take up to its 2 s time-out).
const STATUS_TRIES: u32 = 200;

/// Browsers running at once in this test process.
static BROWSERS: Semaphore = Semaphore::const_new(1);

/// The screen the browser lays pages out for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Screen {
    /// 1280 x 900, a laptop.
    Laptop,
    /// 390 x 844 CSS pixels, a phone: Chromium's mobile emulation, so a
    /// page without a `<meta name="viewport">` is laid out 980 pixels wide
    /// and shrunk, as a real phone would.
    Phone,
}

/// A headless Chromium session; the browser and its driver end when it is dropped.
pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: ChromeDriver,
    _profile: tempfile::TempDir,
    _turn: SemaphorePermit<'static>,
}

impl Browser {
    /// A browser for `screen`, or `None` (said on stderr) when Chromium or
    /// chromedriver is missing and `FULFILLMENT_REQUIRE_BROWSER` is not 1.
    /// Waits for its turn first (one browser at a time).
    pub(crate) async fn start(screen: Screen) -> Option<Browser> {
        if let Some(missing) = [CHROMIUM, CHROMEDRIVER].into_iter().find(|path| !Path::new(path).exists()) {
            let why = format!("{missing} is not installed (scripts/setup installs chromium and chromium-driver)");
            assert!(!browser_required(), "{REQUIRE_BROWSER_VARIABLE}=1 but {why}");
            eprintln!("skipped: {why}");
            return None;
        }
        let turn = BROWSERS.acquire().await.expect("the browser semaphore is never closed");
        let profile = tempfile::tempdir().expect("a temp dir for the browser profile");
        let driver = ChromeDriver::start(profile.path()).await;
        let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(capabilities(screen, &profile.path().join("chromium")));
        let client = match builder.connect(&driver.url()).await {
            Ok(client) => client,
            Err(error) => panic!("chromedriver opens no Chromium session: {error}\n{}", driver.log()),
        };
        Some(Browser { client, driver, _profile: profile, _turn: turn })
    }

    /// Opens `url` and waits until it has loaded.
    pub(crate) async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|error| panic!("open {url}: {error}"));
    }

    /// The element `css`, once the page has it (fails after a while).
    pub(crate) async fn find(&self, css: &str) -> Element {
        match self.client.wait().at_most(PATIENCE).every(POLL).for_element(Locator::Css(css)).await {
            Ok(element) => element,
            Err(error) => panic!("no `{css}` on {}: {error}", self.location().await),
        }
    }

    /// Every element `css` of the page as it is now (maybe none).
    pub(crate) async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client.find_all(Locator::Css(css)).await.unwrap_or_else(|error| panic!("find `{css}`: {error}"))
    }

    /// Whether the page as it is now has an element `css`.
    pub(crate) async fn has(&self, css: &str) -> bool {
        !self.find_all(css).await.is_empty()
    }

    /// The text of `css` (waiting for it), trimmed.
    pub(crate) async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        element.text().await.unwrap_or_else(|error| panic!("text of `{css}`: {error}")).trim().to_string()
    }

    /// The texts of every `css` of the page as it is now.
    pub(crate) async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = Vec::new();
        for element in self.find_all(css).await {
            texts.push(element.text().await.unwrap_or_else(|error| panic!("text of `{css}`: {error}")).trim().to_string());
        }
        texts
    }

    /// Clicks `element` (a submit button, a link) and waits until the page
    /// it leads to has replaced this one: the old page's root element is
    /// gone ("stale") and the new document has loaded.
    pub(crate) async fn click_to_next_page(&self, element: &Element) {
        let old_root = self.client.find(Locator::Css("html")).await.expect("a page is open");
        if let Err(error) = element.click().await {
            panic!("click on {}: {error}", self.location().await);
        }
        self.until("the next page replaces this one", || async {
            match old_root.tag_name().await {
                Err(CmdError::Standard(error))
                    if matches!(error.error, ErrorStatus::StaleElementReference | ErrorStatus::NoSuchElement) =>
                {
                    Some(())
                }
                _ => None,
            }
        })
        .await;
        self.until_loaded().await;
    }

    /// Waits until the document has loaded (`readyState` complete).
    pub(crate) async fn until_loaded(&self) {
        self.until("the page loads", || async {
            let state = self.client.execute("return document.readyState", vec![]).await.ok()?;
            (state == "complete").then_some(())
        })
        .await;
    }

    /// The HTTP status of the answer the current page was loaded from
    /// (after redirects, the last one's).
    pub(crate) async fn status(&self) -> u16 {
        let status = self
            .client
            .execute("return performance.getEntriesByType('navigation')[0].responseStatus", vec![])
            .await
            .expect("the page's navigation timing");
        status.as_u64().and_then(|status| u16::try_from(status).ok()).expect("an HTTP status")
    }

    /// The current page's URL.
    pub(crate) async fn location(&self) -> reqwest::Url {
        self.client.current_url().await.expect("the browser has a current URL")
    }

    /// Whether the page scrolls sideways (it is wider than the screen).
    pub(crate) async fn overflows_sideways(&self) -> bool {
        let widths = self
            .client
            .execute("return [document.documentElement.scrollWidth, window.innerWidth]", vec![])
            .await
            .expect("the page's widths");
        widths[0].as_f64() > widths[1].as_f64()
    }

    /// Saves the whole page (not only what the window shows) as
    /// `target/test-artifacts/browser/<name>.png`; its path.
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.full_page_png().await;
        let folder = artifacts_folder();
        std::fs::create_dir_all(&folder).unwrap_or_else(|error| panic!("create {}: {error}", folder.display()));
        let path = folder.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// A PNG of the whole page, by the DevTools protocol (WebDriver's own
    /// screenshot stops at the window's edge).
    async fn full_page_png(&self) -> Vec<u8> {
        let metrics = self.devtools("Page.getLayoutMetrics", json!({})).await;
        let size = &metrics["cssContentSize"];
        let (width, height) = (size["width"].as_f64().unwrap_or(1280.0), size["height"].as_f64().unwrap_or(900.0));
        let shot = self
            .devtools(
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
                }),
            )
            .await;
        let data = shot["data"].as_str().expect("a screenshot's data");
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data).expect("base64 PNG")
    }

    /// Runs a DevTools protocol command through chromedriver's
    /// `goog/cdp/execute`; its answer.
    async fn devtools(&self, command: &str, params: Value) -> Value {
        let session = self.client.session_id().await.ok().flatten().expect("a session id");
        let url = format!("{}/session/{session}/goog/cdp/execute", self.driver.url());
        let answer: Value = reqwest::Client::new()
            .post(url)
            .json(&json!({"cmd": command, "params": params}))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .unwrap_or_else(|error| panic!("DevTools {command}: {error}"))
            .json()
            .await
            .unwrap_or_else(|error| panic!("DevTools {command} answer: {error}"));
        answer["value"].clone()
    }

    /// Polls `ready` until it answers `Some` (fails after a while, naming `what`).
    pub(crate) async fn until<T, F, Fut>(&self, what: &str, mut ready: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(value) = ready().await {
                return value;
            }
            assert!(Instant::now() < deadline, "waited {PATIENCE:?} for {what} on {}", self.location().await);
            tokio::time::sleep(POLL).await;
        }
    }
}

fn browser_required() -> bool {
    std::env::var(REQUIRE_BROWSER_VARIABLE).is_ok_and(|value| value == "1")
}

/// What the session asks chromedriver for: Debian's Chromium, headless,
/// with the flags known to work in containers, a fresh profile at
/// `profile`, and `screen`'s size.
fn capabilities(screen: Screen, profile: &Path) -> fantoccini::wd::Capabilities {
    let (width, height) = match screen {
        Screen::Laptop => (1280, 900),
        Screen::Phone => (390, 844),
    };
    let mut options = json!({
        "binary": CHROMIUM,
        "args": [
            "--headless",
            // No user namespaces for a sandbox in a container.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // /dev/shm is small in containers; Chromium uses /tmp instead.
            "--disable-dev-shm-usage",
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={width},{height}"),
        ],
    });
    if let Screen::Phone = screen {
        options["mobileEmulation"] = json!({"deviceMetrics": {"width": width, "height": height, "pixelRatio": 2, "touch": true}});
    }
    let mut capabilities = fantoccini::wd::Capabilities::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert("goog:chromeOptions".into(), options);
    capabilities
}

/// The folder of the browser tests' screenshots: `test-artifacts/browser`
/// in the target folder (`CARGO_TARGET_DIR`, else the one the test binary
/// was built in: the ancestor holding cargo's `CACHEDIR.TAG`).
pub(crate) fn artifacts_folder() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let binary = std::env::current_exe().expect("the test binary's path");
            binary
                .ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").exists())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| fulfillment_tests::artifacts::workspace_root().join("target"))
        }
    };
    target.join("test-artifacts").join("browser")
}

/// A `chromedriver` child process on a free loopback port; shut down (with
/// the browsers it started) when dropped.
struct ChromeDriver {
    child: Child,
    address: SocketAddr,
    log: PathBuf,
}

impl ChromeDriver {
    /// Starts chromedriver and waits until its `/status` says it is ready
    /// (a bounded number of tries); fails with its log otherwise.
    async fn start(dir: &Path) -> ChromeDriver {
        let address = free_loopback_address();
        let log = dir.join("chromedriver.log");
        let log_file = std::fs::File::create(&log).expect("create the chromedriver log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={}", address.port()))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("the chromedriver log"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|error| panic!("start {CHROMEDRIVER}: {error}"));
        let mut driver = ChromeDriver { child, address, log };
        let status_url = format!("{}/status", driver.url());
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("an HTTP client");
        for _ in 0..STATUS_TRIES {
            if let Ok(Some(exit)) = driver.child.try_wait() {
                panic!("chromedriver exited ({exit}) before answering:\n{}", driver.log());
            }
            if let Ok(answer) = http.get(&status_url).send().await
                && let Ok(status) = answer.json::<Value>().await
                && status["value"]["ready"] == true
            {
                return driver;
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("chromedriver did not answer {status_url} after {STATUS_TRIES} tries:\n{}", driver.log());
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// What chromedriver printed so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ChromeDriver {
    /// Asks chromedriver to shut down (it quits the browsers of its
    /// sessions, which killing it would leave running), waits a little for
    /// it, then kills it.
    fn drop(&mut self) {
        if let Ok(mut stream) = TcpStream::connect_timeout(&self.address, Duration::from_secs(1)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let request = format!("GET /shutdown HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.address);
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(POLL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address no one listens on now (the OS picks the port).
fn free_loopback_address() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    listener.local_addr().expect("a bound address")
}
