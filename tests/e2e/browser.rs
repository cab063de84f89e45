//! The operator dashboard in a real headless Chromium (issue 11): signing
//! in (and a checkout token that cannot), finding the order whose seat
//! failed while the LMS was failing and retrying it once the LMS is back,
//! refunding from the order page (and denying), refusing a forged form post
//! from another origin, and screenshots of the pages for a person to look at
//! (target/test-artifacts/browser/). They skip, saying so, where Chromium is
//! not installed (scripts/setup installs it), unless
//! `FULFILLMENT_REQUIRE_BROWSER=1`.
//!
//! SQLite only: the pages read and act through the same services as the
//! API, whose tests run on both databases; what these tests add is the
//! browser's side (forms, cookies, origins, what a person sees).

use std::net::{Ipv4Addr, SocketAddr};

use axum::response::Html;
use fantoccini::elements::Element;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::{Value, json};

use crate::chromium::{Browser, Screen};
use crate::support;
use crate::harness::{ADMIN_TOKEN, CHECKOUT_TOKEN, COURSE, Db, TestApp, checkout, statuses};

const LMS_FAILURE: &str = "LMS down for maintenance";

/// The scheme, host and port the test host serves (the API's `base` without `/api/v1`).
fn origin(app: &TestApp) -> &str {
    app.base.strip_suffix("/api/v1").expect("the API base ends with /api/v1")
}

/// The URL of dashboard page `path` ("/orders").
fn dashboard(app: &TestApp, path: &str) -> String {
    format!("{}/dashboard{path}", origin(app))
}

/// Places a seat-and-donation order for `username` and checks that it ended
/// in `status` (Complete, or Fulfillment Error while the LMS fails); the order.
async fn place_order(app: &TestApp, username: &str, status: &str) -> Value {
    let mut body = checkout("59.00", "tok_success");
    body["user"] = json!({"username": username, "email": format!("{username}@example.com")});
    let (code, order) = app.place(&body, None).await;
    assert_eq!(code, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], status, "{order}");
    order
}

fn number(order: &Value) -> &str {
    order["number"].as_str().expect("an order number")
}

/// The id of the order's line `index` (0: the seat, 1: the donation).
fn line_id(order: &Value, index: usize) -> u64 {
    order["lines"][index]["id"].as_u64().expect("a line id")
}

/// The attributes stored on the order's line `index`, as the page shows
/// them: `key = value`, one a line.
fn stored_attributes(order: &Value, index: usize) -> Vec<String> {
    let attributes = order["lines"][index]["attributes"].as_object().expect("the line's attributes");
    attributes.iter().map(|(key, value)| format!("{key} = {}", value.as_str().unwrap_or_default())).collect()
}

/// Signs in on the sign-in page with `token`, as a person would: types it
/// and presses the button.
async fn submit_sign_in(browser: &Browser, app: &TestApp, token: &str) {
    browser.open(&dashboard(app, "/sign-in")).await;
    let form = browser.find("form#sign-in").await;
    assert_eq!(attribute(&form, "method").await.to_lowercase(), "post");
    assert!(attribute(&form, "action").await.ends_with("/dashboard/sign-in"), "{}", attribute(&form, "action").await);
    let csrf = browser.find("form#sign-in input[name=csrf][type=hidden]").await;
    assert!(!attribute(&csrf, "value").await.is_empty(), "the sign-in form carries a CSRF token");
    let field = browser.find("form#sign-in input[name=token][type=password]").await;
    field.send_keys(token).await.expect("type the token");
    browser.click_to_next_page(&browser.find("form#sign-in button[type=submit]").await).await;
}

/// Signs in with the admin token; fails unless it leads to the orders.
async fn sign_in(browser: &Browser, app: &TestApp) {
    submit_sign_in(browser, app, ADMIN_TOKEN).await;
    assert_eq!(browser.location().await.path(), "/dashboard/orders");
    assert!(browser.has("form#sign-out").await, "a signed-in page has the sign-out form");
}

async fn attribute(element: &Element, name: &str) -> String {
    element.attr(name).await.expect("read an attribute").unwrap_or_default()
}

/// The browser's cookies for the host, as a `Cookie` header.
async fn cookie_header(browser: &Browser) -> String {
    let cookies = browser.client.get_all_cookies().await.expect("the browser's cookies");
    cookies.iter().map(|cookie| format!("{}={}", cookie.name(), cookie.value())).collect::<Vec<_>>().join("; ")
}

/// What the host answers a GET of dashboard page `path` with the browser's
/// cookies, redirects not followed: the status and the `Location`.
async fn get_with_cookies(app: &TestApp, path: &str, cookies: &str) -> (StatusCode, String) {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("an HTTP client");
    let answer = http.get(dashboard(app, path)).header(COOKIE, cookies).send().await.expect("the host answers");
    let location = answer.headers().get(LOCATION).and_then(|value| value.to_str().ok()).unwrap_or_default().to_string();
    (answer.status(), location)
}

/// Opens the orders list filtered by the `form#filters` field `field` set
/// to `value` (a select is set by its visible label), as a person would.
async fn filter_orders(browser: &Browser, app: &TestApp, field: &str, value: &str) {
    browser.open(&dashboard(app, "/orders")).await;
    let input = browser.find(&format!("form#filters [name={field}]")).await;
    if input.tag_name().await.expect("a tag name") == "select" {
        input.select_by_label(value).await.unwrap_or_else(|error| panic!("choose {value:?} in {field}: {error}"));
    } else {
        input.send_keys(value).await.expect("type in a filter");
    }
    browser.click_to_next_page(&browser.find("form#filters [type=submit]").await).await;
}

/// The order numbers the orders list shows, in its order.
async fn listed_orders(browser: &Browser) -> Vec<String> {
    let mut numbers = Vec::new();
    for row in browser.find_all("table#orders tr[data-order]").await {
        numbers.push(attribute(&row, "data-order").await);
    }
    numbers
}

async fn row_classes(browser: &Browser, number: &str) -> Vec<String> {
    let row = browser.find(&format!("table#orders tr[data-order='{number}']")).await;
    attribute(&row, "class").await.split_whitespace().map(str::to_string).collect()
}

/// The text of cell `cell` of the row `row` (a CSS selector) of the page.
async fn cell(browser: &Browser, row: &str, cell: &str) -> String {
    browser.text(&format!("{row} td.{cell}")).await
}

/// Presses the submit button of the form `form` (a CSS selector) and waits for the page it leads to.
async fn press(browser: &Browser, form: &str) {
    let button = browser.find(&format!("{form} [type=submit]")).await;
    browser.click_to_next_page(&button).await;
}

/// The harness itself, on a page the host serves without the dashboard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_browser, ignore = "needs /usr/bin/chromium and /usr/bin/chromedriver (scripts/setup installs them)")]
async fn the_harness_loads_a_page_of_the_host() {
    let Some(browser) = Browser::start(Screen::Laptop).await else { return };
    let app = TestApp::spawn(Db::Sqlite).await;
    browser.open(&format!("{}/healthz", origin(&app))).await;
    assert_eq!(browser.status().await, 200);
    let body = browser.text("body").await;
    assert!(body.contains(r#""status":"ok""#), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_browser, ignore = "needs /usr/bin/chromium and /usr/bin/chromedriver (scripts/setup installs them)")]
async fn a_checkout_token_cannot_sign_in_and_an_admin_token_can_until_it_signs_out() {
    let Some(browser) = Browser::start(Screen::Laptop).await else { return };
    let app = TestApp::spawn(Db::Sqlite).await;

    browser.open(&dashboard(&app, "/orders")).await;
    assert_eq!(browser.location().await.path(), "/dashboard/sign-in", "a page needs a session");

    submit_sign_in(&browser, &app, CHECKOUT_TOKEN).await;
    let status = browser.status().await;
    assert!(matches!(status, 401 | 403), "a checkout token is refused: {status}");
    let error = browser.text("p.flash.error").await;
    assert!(error.to_lowercase().contains("admin"), "the refusal says an admin token is needed: {error:?}");
    assert!(browser.has("form#sign-in").await, "the form is shown again");
    let cookies = cookie_header(&browser).await;
    assert_eq!(
        get_with_cookies(&app, "/orders", &cookies).await,
        (StatusCode::SEE_OTHER, "/dashboard/sign-in".to_string()),
        "no cookie the refusal left opens the orders: {cookies:?}"
    );
    browser.open(&dashboard(&app, "/orders")).await;
    assert_eq!(browser.location().await.path(), "/dashboard/sign-in");

    sign_in(&browser, &app).await;
    assert_eq!(browser.status().await, 200);
    let session = browser.client.get_named_cookie("fh_session").await.expect("the session cookie");
    assert_eq!(session.http_only(), Some(true), "{session}");
    assert_eq!(session.same_site().map(|same_site| same_site.to_string()).as_deref(), Some("Strict"), "{session}");
    assert_eq!(session.path(), Some("/dashboard"), "{session}");
    let cookies = cookie_header(&browser).await;
    assert_eq!(get_with_cookies(&app, "/orders", &cookies).await.0, StatusCode::OK, "the cookie is the session");

    press(&browser, "form#sign-out").await;
    browser.open(&dashboard(&app, "/orders")).await;
    assert_eq!(browser.location().await.path(), "/dashboard/sign-in", "signed out");
    assert_eq!(
        get_with_cookies(&app, "/orders", &cookies).await,
        (StatusCode::SEE_OTHER, "/dashboard/sign-in".to_string()),
        "the session ended on the server, not only in the browser"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_browser, ignore = "needs /usr/bin/chromium and /usr/bin/chromedriver (scripts/setup installs them)")]
async fn a_seat_that_failed_while_the_lms_failed_is_found_explained_and_retried_to_complete() {
    let Some(browser) = Browser::start(Screen::Laptop).await else { return };
    let app = TestApp::spawn(Db::Sqlite).await;
    let fine = place_order(&app, "alice", "Complete").await;
    app.lms.fail_all(503, LMS_FAILURE);
    let failed_order = place_order(&app, "bob", "Fulfillment Error").await;
    assert_eq!(statuses(&failed_order), ["Fulfillment Server Error", "Complete"]);
    let seat = line_id(&failed_order, 0);
    let (fine, failed) = (number(&fine), number(&failed_order));

    sign_in(&browser, &app).await;
    assert_eq!(listed_orders(&browser).await, [failed, fine], "newest first");
    assert_eq!(browser.text("span#count").await, "2");
    assert!(row_classes(&browser, failed).await.contains(&"attention".to_string()), "the failed order stands out");
    assert!(!row_classes(&browser, fine).await.contains(&"attention".to_string()), "a Complete one does not");
    let row = format!("table#orders tr[data-order='{failed}']");
    assert_eq!(cell(&browser, &row, "status").await, "Fulfillment Error");
    assert_eq!(cell(&browser, &row, "user").await, "bob");
    assert!(cell(&browser, &row, "total").await.contains("59.00"), "{}", cell(&browser, &row, "total").await);
    browser.screenshot("orders").await;

    filter_orders(&browser, &app, "status", "Fulfillment Error").await;
    assert_eq!(listed_orders(&browser).await, [failed], "filtered by status");
    assert_eq!(browser.text("span#count").await, "1");
    filter_orders(&browser, &app, "number", fine).await;
    assert_eq!(listed_orders(&browser).await, [fine], "filtered by number");
    filter_orders(&browser, &app, "number", failed).await;
    assert_eq!(listed_orders(&browser).await, [failed], "filtered by number");

    browser.click_to_next_page(&browser.find(&format!("{row} td.number a")).await).await;
    assert_eq!(browser.location().await.path(), format!("/dashboard/orders/{failed}"));
    assert!(browser.text("h1").await.contains(failed), "{}", browser.text("h1").await);
    assert_eq!(browser.text("span#order-status").await, "Fulfillment Error");
    let seat_row = format!("table#lines tr[data-line='{seat}']");
    assert_eq!(cell(&browser, &seat_row, "status").await, "Fulfillment Server Error");
    assert_eq!(cell(&browser, &seat_row, "product-type").await, "Seat");
    assert_eq!(cell(&browser, &seat_row, "module").await, "enrollment");
    let attributes = cell(&browser, &seat_row, "attributes").await;
    assert_eq!(attributes.lines().collect::<Vec<_>>(), stored_attributes(&failed_order, 0), "the line's stored attributes");
    let notes = browser.texts("ul#notes li").await;
    assert!(notes.iter().any(|note| note.contains(LMS_FAILURE)), "a note explains the failure: {notes:?}");
    let attempts = browser.text("table#attempts").await;
    assert!(attempts.contains("enrollment") && attempts.contains(LMS_FAILURE), "the attempt log: {attempts}");
    assert!(browser.has("section#payment").await && browser.has("section#job").await);
    browser.screenshot("order-failed").await;

    app.lms.heal();
    press(&browser, "form#retry").await;
    assert_eq!(browser.location().await.path(), format!("/dashboard/orders/{failed}"));
    assert!(!browser.text("p.flash").await.is_empty(), "the outcome is told");
    assert_eq!(browser.text("span#order-status").await, "Complete");
    assert_eq!(cell(&browser, &seat_row, "status").await, "Complete");
    assert!(!browser.has("form#retry").await, "nothing is left to retry");
    assert_eq!(app.lms.enrollment("bob", COURSE).map(|enrollment| enrollment.is_active), Some(true));
    let (_, stored) = app.get(&format!("/orders/{failed}"), ADMIN_TOKEN).await;
    assert_eq!(statuses(&stored), ["Complete", "Complete"], "{stored}");
    browser.screenshot("order-complete").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_browser, ignore = "needs /usr/bin/chromium and /usr/bin/chromedriver (scripts/setup installs them)")]
async fn the_orders_list_pages_and_keeps_its_filters_and_filters_by_date() {
    let Some(browser) = Browser::start(Screen::Laptop).await else { return };
    let app = TestApp::spawn(Db::Sqlite).await;
    // A page holds 50: alice's 51 orders take two.
    let oldest = place_order(&app, "alice", "Complete").await;
    for _ in 1..51 {
        place_order(&app, "alice", "Complete").await;
    }
    place_order(&app, "bob", "Complete").await;
    sign_in(&browser, &app).await;
    assert_eq!(browser.text("span#count").await, "52");

    filter_orders(&browser, &app, "username", "alice").await;
    assert_eq!(browser.text("span#count").await, "51");
    assert_eq!(listed_orders(&browser).await.len(), 50);
    assert!(!browser.has("a[rel=prev]").await, "the first page has no previous one");
    browser.click_to_next_page(&browser.find("a[rel=next]").await).await;
    assert_eq!(listed_orders(&browser).await, [number(&oldest)], "the second page: the oldest order");
    assert_eq!(browser.text("span#count").await, "51", "the filter is kept across pages");
    assert!(!browser.has("a[rel=next]").await, "the last page has no next one");
    browser.click_to_next_page(&browser.find("a[rel=prev]").await).await;
    assert_eq!(listed_orders(&browser).await.len(), 50);

    // The day the orders were placed (as the host recorded it), and the one before.
    let placed = oldest["date_placed"].as_str().expect("a date");
    let day = time::Date::parse(&placed[..10], time::macros::format_description!("[year]-[month]-[day]")).expect("a date");
    let before = day.previous_day().expect("a day before");
    browser.open(&dashboard(&app, &format!("/orders?from={day}&to={day}"))).await;
    assert_eq!(browser.text("span#count").await, "52", "placed on {day}");
    let from = browser.find("form#filters input[name=from]").await;
    assert_eq!(from.prop("value").await.expect("a value").as_deref(), Some(day.to_string().as_str()), "the form shows the range");
    browser.open(&dashboard(&app, &format!("/orders?to={before}"))).await;
    assert_eq!(browser.text("span#count").await, "0", "none placed by {before}");
    assert!(listed_orders(&browser).await.is_empty());
}

/// Opens a refund of line `line` on order `number`'s page (ticks its box,
/// presses the button); the new refund's id.
async fn create_refund(browser: &Browser, app: &TestApp, number: &str, line: u64) -> i64 {
    browser.open(&dashboard(app, &format!("/orders/{number}"))).await;
    let before = refund_ids(browser).await;
    let tick = browser.find(&format!("form#new-refund input[name=line_ids][value='{line}']")).await;
    tick.click().await.expect("tick the line");
    press(browser, "form#new-refund").await;
    assert_eq!(browser.location().await.path(), format!("/dashboard/orders/{number}"));
    let created: Vec<i64> = refund_ids(browser).await.into_iter().filter(|id| !before.contains(id)).collect();
    let [id] = created[..] else { panic!("one new refund row, not {created:?}") };
    assert_eq!(cell(browser, &refund_row(id), "status").await, "Open");
    id
}

async fn refund_ids(browser: &Browser) -> Vec<i64> {
    let mut ids = Vec::new();
    for row in browser.find_all("table#refunds tr[data-refund]").await {
        ids.push(attribute(&row, "data-refund").await.parse().expect("a refund id"));
    }
    ids
}

fn refund_row(id: i64) -> String {
    format!("table#refunds tr[data-refund='{id}']")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_browser, ignore = "needs /usr/bin/chromium and /usr/bin/chromedriver (scripts/setup installs them)")]
async fn a_line_refunded_from_the_order_page_is_revoked_and_a_denied_refund_is_not() {
    let Some(browser) = Browser::start(Screen::Laptop).await else { return };
    let app = TestApp::spawn(Db::Sqlite).await;
    let alices = place_order(&app, "alice", "Complete").await;
    let bobs = place_order(&app, "bob", "Complete").await;
    sign_in(&browser, &app).await;

    let approved = create_refund(&browser, &app, number(&alices), line_id(&alices, 0)).await;
    press(&browser, &format!("{} form.approve", refund_row(approved))).await;
    let refund = app.settled_refund(approved).await;
    assert_eq!(refund["status"], "Complete", "{refund}");
    browser.open(&dashboard(&app, &format!("/orders/{}", number(&alices)))).await;
    assert_eq!(cell(&browser, &refund_row(approved), "status").await, "Complete");
    assert!(!browser.has(&format!("{} form.approve", refund_row(approved))).await, "a Complete refund has no actions");
    assert_eq!(app.lms.enrollment("alice", COURSE).map(|enrollment| enrollment.is_active), Some(false), "revoked");
    let notes = browser.texts("ul#notes li").await;
    assert!(notes.iter().any(|note| note.contains(&format!("refund {approved}: line")) && note.contains("revoked")), "{notes:?}");
    browser.screenshot("order-refunded").await;

    let denied = create_refund(&browser, &app, number(&bobs), line_id(&bobs, 0)).await;
    press(&browser, &format!("{} form.deny", refund_row(denied))).await;
    let refund = app.settled_refund(denied).await;
    assert_eq!(refund["status"], "Denied", "{refund}");
    browser.open(&dashboard(&app, &format!("/orders/{}", number(&bobs)))).await;
    assert_eq!(cell(&browser, &refund_row(denied), "status").await, "Denied");
    assert_eq!(app.lms.enrollment("bob", COURSE).map(|enrollment| enrollment.is_active), Some(true), "not revoked");
    assert_eq!(app.payments.ledger().iter().filter(|entry| entry.signed_minor_units < 0).count(), 1, "one credit, alice's");
}

/// A page of another origin (another loopback port: the same site, so the
/// SameSite=Strict session cookie still goes along, as it would from any
/// page of the company's other hosts) whose form posts itself to `action`
/// as soon as it loads, with `fields` (name, value).
async fn serve_forged_form(action: String, fields: Vec<(&'static str, String)>) -> SocketAddr {
    let inputs: String =
        fields.iter().map(|(name, value)| format!(r#"<input type="hidden" name="{name}" value="{value}">"#)).collect();
    let page = format!(
        r#"<!doctype html><html><body><form method="post" action="{action}">{inputs}</form>
<script>document.forms[0].submit();</script></body></html>"#
    );
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind the forger");
    let address = listener.local_addr().expect("the forger's address");
    let router = axum::Router::new().route("/", axum::routing::get(move || std::future::ready(Html(page.clone()))));
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

/// Loads the forger at `forger` in the signed-in browser and waits for the
/// host's answer to the post it makes: it must be 403 and speak of CSRF.
async fn is_refused(browser: &Browser, app: &TestApp, forger: SocketAddr) {
    browser.open(&format!("http://{forger}/")).await;
    let host = origin(app).to_string();
    browser
        .until("the forged form posts to the host", || async {
            browser.location().await.as_str().starts_with(&host).then_some(())
        })
        .await;
    browser.until_loaded().await;
    assert_eq!(browser.status().await, 403, "{}", browser.location().await);
    assert!(browser.text("body").await.contains("CSRF"), "{}", browser.text("body").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_browser, ignore = "needs /usr/bin/chromium and /usr/bin/chromedriver (scripts/setup installs them)")]
async fn a_forged_form_post_from_another_origin_is_refused_and_changes_nothing() {
    let Some(browser) = Browser::start(Screen::Laptop).await else { return };
    let app = TestApp::spawn(Db::Sqlite).await;
    app.lms.fail_all(503, LMS_FAILURE);
    let failed = place_order(&app, "alice", "Fulfillment Error").await;
    // From here a retry would succeed: a refused one is seen to change nothing.
    app.lms.heal();
    let complete = place_order(&app, "bob", "Complete").await;
    let body = json!({"order_number": number(&complete), "line_ids": [line_id(&complete, 0)]});
    let (status, refund) = app.send(app.http.post(format!("{}/refunds", app.base)).json(&body), Some(ADMIN_TOKEN)).await;
    assert_eq!((status, &refund["status"]), (StatusCode::CREATED, &json!("Open")), "{refund}");
    let refund_id = refund["id"].as_i64().expect("a refund id");
    sign_in(&browser, &app).await;
    let lms_requests = app.lms.requests().len();

    // Without the CSRF field.
    let retry = dashboard(&app, &format!("/orders/{}/retry", number(&failed)));
    is_refused(&browser, &app, serve_forged_form(retry, vec![]).await).await;
    // With a made-up one.
    let approve = dashboard(&app, &format!("/refunds/{refund_id}/approve"));
    is_refused(&browser, &app, serve_forged_form(approve, vec![("csrf", "forged".to_string())]).await).await;

    let (_, order) = app.get(&format!("/orders/{}", number(&failed)), ADMIN_TOKEN).await;
    assert_eq!(order["status"], "Fulfillment Error", "the forged retry ran nothing: {order}");
    assert_eq!(app.lms.requests().len(), lms_requests, "nothing was sent to the LMS");
    let (_, refund) = app.get(&format!("/refunds/{refund_id}"), ADMIN_TOKEN).await;
    assert_eq!(refund["status"], "Open", "the forged approval changed nothing: {refund}");
    assert_eq!(app.payments.ledger().iter().filter(|entry| entry.signed_minor_units < 0).count(), 0, "no credit");

    // The same session, from the dashboard's own page, may retry: the
    // refusal was the origin's, not the session's.
    browser.open(&dashboard(&app, &format!("/orders/{}", number(&failed)))).await;
    press(&browser, "form#retry").await;
    assert_eq!(browser.text("span#order-status").await, "Complete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_browser, ignore = "needs /usr/bin/chromium and /usr/bin/chromedriver (scripts/setup installs them)")]
async fn the_modules_page_shows_every_module_and_the_one_that_failed_to_load() {
    let Some(browser) = Browser::start(Screen::Laptop).await else { return };
    let app = TestApp::spawn(Db::Sqlite).await;
    place_order(&app, "alice", "Complete").await;
    sign_in(&browser, &app).await;
    browser.open(&dashboard(&app, "/modules")).await;
    let mut names = Vec::new();
    for row in browser.find_all("table#modules tr[data-module]").await {
        names.push(attribute(&row, "data-module").await);
    }
    for module in ["enrollment", "coupon", "enrollment-code", "course-entitlement", "donation", "broken"] {
        assert!(names.iter().any(|name| name == module), "{module} is listed: {names:?}");
    }
    let enrollment = "table#modules tr[data-module='enrollment']";
    assert_eq!(cell(&browser, enrollment, "status").await, "running");
    // The cell shows the digest's start, the whole of it on hover (its title).
    let sha256 = browser.find(&format!("{enrollment} td.sha256 code")).await;
    let digest = attribute(&sha256, "title").await;
    assert!(digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()), "the full sha256: {digest:?}");
    let shown = sha256.text().await.expect("the digest's text");
    assert!(digest.starts_with(shown.trim_end_matches('…')), "{shown:?} is the start of {digest}");
    let breaker = cell(&browser, enrollment, "breaker").await;
    assert!(breaker.starts_with("closed"), "{breaker}");
    assert_eq!(cell(&browser, enrollment, "in-flight").await, "0");
    let broken = cell(&browser, "table#modules tr[data-module='broken']", "status").await;
    assert!(broken.contains("/nonexistent/broken.wasm") || broken.to_lowercase().contains("fail"), "why it is out: {broken}");
    browser.screenshot("modules").await;
}

/// Two products no shipped module claims, and the test fixture acting out a
/// fault for each: `gadgets` panics in `fulfill-product` (a trap),
/// `spinner` spins past its CPU time (a time-out).
fn faulty_modules() -> String {
    let gadgets = support::module_entry("gadgets", "misbehaving", &[], &[("claim", "Gadget"), ("behaviour", "trap-in-fulfill")]);
    let spinner = support::module_entry("spinner", "misbehaving", &[], &[("claim", "Widget"), ("behaviour", "loop")]);
    let spinner = support::with_limits(spinner, &[("cpu_ms", "20")]);
    let products = r#"
[[products]]
sku = "GADGET"
product_type = "Gadget"
title = "Gadget"
price = "5.00"
currency = "USD"

[[products]]
sku = "WIDGET"
product_type = "Widget"
title = "Widget"
price = "5.00"
currency = "USD"
"#;
    format!("{gadgets}\n{spinner}\n{products}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_browser, ignore = "needs /usr/bin/chromium and /usr/bin/chromedriver (scripts/setup installs them)")]
async fn the_modules_page_counts_each_modules_calls_traps_and_time_outs() {
    let Some(browser) = Browser::start(Screen::Laptop).await else { return };
    let app = TestApp::spawn_with(Db::Sqlite, &faulty_modules()).await;
    place_order(&app, "alice", "Complete").await;
    for sku in ["GADGET", "WIDGET"] {
        let mut body = checkout("5.00", "tok_success");
        body["basket"] = json!([{"sku": sku, "quantity": 1}]);
        let (status, order) = app.place(&body, None).await;
        assert_eq!((status, &order["status"]), (StatusCode::CREATED, &json!("Fulfillment Error")), "{order}");
    }
    sign_in(&browser, &app).await;
    browser.open(&dashboard(&app, "/modules")).await;
    browser.screenshot("modules-with-faults").await;
    let (_, modules) = app.get("/modules", ADMIN_TOKEN).await;
    let counted = |name: &str| {
        let module = modules.as_array().and_then(|all| all.iter().find(|module| module["name"] == name));
        module.map(|module| module["calls"].clone()).unwrap_or_default()
    };
    // (module, failures, traps, time-outs) as the runtime counted them.
    for (name, failures, traps, timeouts) in [("enrollment", 0, 0, 0), ("gadgets", 1, 1, 0), ("spinner", 1, 0, 1)] {
        let row = format!("table#modules tr[data-module='{name}']");
        let count = async |column: &str| {
            let text = cell(&browser, &row, column).await;
            text.parse::<u64>().unwrap_or_else(|_| panic!("{name}'s {column} is a count: {text:?}"))
        };
        let stats = counted(name);
        assert_eq!(
            (count("failures").await, count("traps").await, count("timeouts").await),
            (failures, traps, timeouts),
            "{name}: {stats}"
        );
        let calls = count("calls").await;
        assert!(calls > 0, "{name} was called");
        assert_eq!(json!(calls), stats["calls"], "the page shows what the runtime counted: {stats}");
        for percentile in ["p50", "p99"] {
            let time = cell(&browser, &row, percentile).await;
            assert!(time.ends_with(" ms") && time.trim_end_matches(" ms").parse::<f64>().is_ok(), "{name} {percentile}: {time:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_browser, ignore = "needs /usr/bin/chromium and /usr/bin/chromedriver (scripts/setup installs them)")]
async fn the_pages_fit_a_phone() {
    let Some(browser) = Browser::start(Screen::Phone).await else { return };
    let app = TestApp::spawn(Db::Sqlite).await;
    app.lms.fail_all(503, LMS_FAILURE);
    let failed = place_order(&app, "alice", "Fulfillment Error").await;
    sign_in(&browser, &app).await;
    for (page, name) in [
        ("/orders".to_string(), "phone-orders"),
        (format!("/orders/{}", number(&failed)), "phone-order"),
        ("/modules".to_string(), "phone-modules"),
    ] {
        browser.open(&dashboard(&app, &page)).await;
        browser.screenshot(name).await;
        assert!(!browser.overflows_sideways().await, "{page} scrolls sideways on a phone (see {name}.png)");
    }
    let width = browser.client.execute("return window.innerWidth", vec![]).await.expect("the width");
    assert_eq!(width, json!(390), "laid out for the phone's width (a <meta name=viewport>)");
    // The retry button can be reached and pressed there too.
    app.lms.heal();
    browser.open(&dashboard(&app, &format!("/orders/{}", number(&failed)))).await;
    let button = browser.find("form#retry [type=submit]").await;
    assert!(button.is_displayed().await.expect("visibility"), "the retry button shows on a phone");
    browser.click_to_next_page(&button).await;
    assert_eq!(browser.text("span#order-status").await, "Complete");
}

/// Whether the whole of the first element `css` is inside the window's
/// width as the page is laid out (not cut off by a table that scrolls).
async fn fits_the_width(browser: &Browser, css: &str) -> bool {
    browser.find(css).await;
    let fits = browser
        .client
        .execute("return document.querySelector(arguments[0]).getBoundingClientRect().right <= window.innerWidth", vec![json!(css)])
        .await
        .expect("measure an element");
    fits == json!(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_browser, ignore = "needs /usr/bin/chromium and /usr/bin/chromedriver (scripts/setup installs them)")]
async fn on_a_phone_the_statuses_show_without_scrolling_a_table() {
    let Some(browser) = Browser::start(Screen::Phone).await else { return };
    let app = TestApp::spawn(Db::Sqlite).await;
    app.lms.fail_all(503, LMS_FAILURE);
    let failed = place_order(&app, "alice", "Fulfillment Error").await;
    sign_in(&browser, &app).await;
    let row = format!("table#orders tr[data-order='{}']", number(&failed));
    assert!(fits_the_width(&browser, &format!("{row} td.number")).await, "the measure works: the first column fits");
    assert!(fits_the_width(&browser, &format!("{row} td.status")).await, "the orders list's status column");
    browser.open(&dashboard(&app, &format!("/orders/{}", number(&failed)))).await;
    let line = format!("table#lines tr[data-line='{}']", line_id(&failed, 0));
    assert!(fits_the_width(&browser, &format!("{line} td.status")).await, "a line's status");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_browser, ignore = "needs /usr/bin/chromium and /usr/bin/chromedriver (scripts/setup installs them)")]
async fn on_a_laptop_every_column_of_the_modules_table_shows() {
    let Some(browser) = Browser::start(Screen::Laptop).await else { return };
    let app = TestApp::spawn(Db::Sqlite).await;
    sign_in(&browser, &app).await;
    browser.open(&dashboard(&app, "/modules")).await;
    assert!(fits_the_width(&browser, "table#modules tr[data-module='enrollment'] td.name").await, "the first column fits");
    assert!(fits_the_width(&browser, "table#modules tr[data-module='enrollment'] td.p99").await, "the last column");
}

/// The cells of the page (as `label: text`) whose content is wider than the
/// cell itself, so that part of it is cut off or spills over its neighbours.
async fn cells_that_overflow(browser: &Browser) -> Vec<String> {
    let script = "return [...document.querySelectorAll('td')]
        .filter(td => td.scrollWidth > td.clientWidth + 1)
        .map(td => (td.dataset.label || td.className) + ': ' + td.innerText)";
    let cells = browser.client.execute(script, vec![]).await.expect("measure the cells");
    cells.as_array().map(|cells| cells.iter().filter_map(|cell| cell.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// How many lines the first words of element `css` (its first text, at any
/// depth) take (1 when the word is not squeezed into a column of letters).
async fn lines_of_the_first_text(browser: &Browser, css: &str) -> u64 {
    browser.find(css).await;
    let script = "const walker = document.createTreeWalker(document.querySelector(arguments[0]), NodeFilter.SHOW_TEXT,
            { acceptNode: n => n.textContent.trim() ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_SKIP });
        const node = walker.nextNode();
        const range = document.createRange(); range.selectNodeContents(node);
        return new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size";
    let lines = browser.client.execute(script, vec![json!(css)]).await.expect("measure a text");
    lines.as_u64().expect("a number of lines")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_browser, ignore = "needs /usr/bin/chromium and /usr/bin/chromedriver (scripts/setup installs them)")]
async fn on_a_phone_no_cell_is_cut_off_or_squeezed() {
    let Some(browser) = Browser::start(Screen::Phone).await else { return };
    let app = TestApp::spawn(Db::Sqlite).await;
    app.lms.fail_all(503, LMS_FAILURE);
    let failed = place_order(&app, "alice", "Fulfillment Error").await;
    sign_in(&browser, &app).await;
    let mut problems = Vec::new();
    for page in ["/orders".to_string(), format!("/orders/{}", number(&failed)), "/modules".to_string()] {
        browser.open(&dashboard(&app, &page)).await;
        problems.extend(cells_that_overflow(&browser).await.into_iter().map(|cell| format!("{page}: cut off: {cell:?}")));
    }
    // The measure itself: a running module's status is one line.
    assert_eq!(lines_of_the_first_text(&browser, "table#modules tr[data-module='enrollment'] td.status").await, 1);
    let lines = lines_of_the_first_text(&browser, "table#modules tr[data-module='broken'] td.status").await;
    if lines != 1 {
        problems.push(format!("/modules: the broken module's status word takes {lines} lines"));
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
