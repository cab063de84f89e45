//! The operator dashboard in a real headless Chromium (issue 11): signing
//! in, finding a failed order and retrying it, refunding from the order
//! page, refusing a forged cross-site form post, and screenshots of the
//! pages for a person to look at (target/test-artifacts/browser/).
//!
//! SQLite only: the pages read what the API reads, through the same
//! services, and the API tests run those on both databases; what these
//! tests add is the browser's side (forms, cookies, origins, layout).

use reqwest::StatusCode;

use crate::chromium::{Browser, Screen};
use crate::harness::{Db, TestApp};

/// The scheme, host and port the test host serves (the API's `base` without `/api/v1`).
fn origin(app: &TestApp) -> &str {
    app.base.strip_suffix("/api/v1").expect("the API base ends with /api/v1")
}

/// The harness itself, on a page the host serves without the dashboard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_loads_a_page_of_the_host() {
    let Some(browser) = Browser::start(Screen::Laptop).await else { return };
    let app = TestApp::spawn(Db::Sqlite).await;
    browser.open(&format!("{}/healthz", origin(&app))).await;
    assert_eq!(browser.status().await, StatusCode::OK.as_u16());
    assert!(browser.text("body").await.contains(r#""status":"ok""#), "{}", browser.text("body").await);
    browser.screenshot("healthz").await;
}
