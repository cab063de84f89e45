//! The operator dashboard over HTTP, as a browser's requests reach it:
//! sessions (cookie flags, expiry, sign-out), who may sign in, CSRF and
//! origin checks on every form post, the list's filters and pages, and
//! the staff actions on an order's page, which run what the API runs.
//! (tests/e2e/browser.rs drives the same pages in a real Chromium.)

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::harness::{ADMIN_TOKEN, CHECKOUT_TOKEN, COURSE, Db, TestApp, checkout, shipped};
use crate::on_both_databases;

on_both_databases!(
    a_session_is_a_strict_http_only_cookie_that_signing_out_or_expiry_ends,
    a_post_without_the_sessions_csrf_token_or_from_another_origin_changes_nothing,
    retry_and_refunds_from_the_order_page_run_what_the_api_runs,
    the_list_filters_by_status_user_number_and_date_and_pages,
    the_order_page_shows_the_shipping_and_both_addresses,
);

/// A browser's view of the dashboard: its cookies and the last CSRF token
/// a page gave it.
struct Browser {
    origin: String,
    http: reqwest::Client,
    cookies: Vec<(String, String)>,
    csrf: String,
}

/// An answer: status, `Location`, `Set-Cookie` lines and the page.
struct Page {
    status: StatusCode,
    location: Option<String>,
    set_cookies: Vec<String>,
    html: String,
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            origin: app.base.trim_end_matches("/api/v1").to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a client"),
            cookies: Vec::new(),
            csrf: String::new(),
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie_header = self.cookies.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("; ");
        let request = if cookie_header.is_empty() { request } else { request.header(COOKIE, cookie_header) };
        let response = request.send().await.expect("the host answers");
        let status = response.status();
        let location = response.headers().get(LOCATION).map(|value| value.to_str().expect("ASCII").to_string());
        let set_cookies: Vec<String> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|value| value.to_str().expect("ASCII").to_string())
            .collect();
        for line in &set_cookies {
            let (pair, attributes) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            self.cookies.retain(|(known, _)| known != name);
            if !attributes.contains("Max-Age=0") && !value.is_empty() {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
        let html = response.text().await.expect("a body");
        if let Some(csrf) = hidden_csrf(&html) {
            self.csrf = csrf;
        }
        Page {
            status,
            location,
            set_cookies,
            html,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.origin));
        self.send(request).await
    }

    /// A form post from the dashboard's own page (its Origin).
    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.http.post(format!("{}{path}", self.origin)).header("Origin", &self.origin).form(form);
        self.send(request).await
    }

    async fn sign_in(&mut self, token: &str) -> Page {
        self.get("/dashboard/sign-in").await;
        let csrf = self.csrf.clone();
        self.post("/dashboard/sign-in", &[("token", token), ("csrf", &csrf)]).await
    }

    fn has_cookie(&self, name: &str) -> bool {
        self.cookies.iter().any(|(known, _)| known == name)
    }
}

/// A forged form post: what it pretends.
struct Forgery {
    what: &'static str,
    origin: Option<String>,
    csrf: Option<String>,
    fetch_site: Option<&'static str>,
}

/// The value of the first `name="csrf"` hidden field.
fn hidden_csrf(html: &str) -> Option<String> {
    let start = html.find(r#"name="csrf" value=""#)? + r#"name="csrf" value=""#.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

/// The `<tr data-order=...>` rows of a list page, in order.
fn listed(html: &str) -> Vec<String> {
    html.split(r#"<tr data-order=""#)
        .skip(1)
        .map(|rest| rest[..rest.find('"').expect("closing quote")].to_string())
        .collect()
}

/// The row of `number` in a list page.
fn row<'a>(html: &'a str, number: &str) -> &'a str {
    let start = html.find(&format!(r#"<tr data-order="{number}""#)).unwrap_or_else(|| panic!("{number} is listed: {html}"));
    let end = html[start..].find("</tr>").expect("row end");
    &html[start..start + end]
}

/// A seat-and-donation order whose seat fails: the LMS answers 500 to
/// every enrollment while it is placed.
async fn failed_order(app: &TestApp) -> String {
    app.lms.fail_all(500, "LMS is down for maintenance");
    let (status, order) = app.place(&checkout("59.00", "tok_success"), None).await;
    assert!(matches!(status, StatusCode::CREATED | StatusCode::ACCEPTED), "{status}: {order}");
    let number = order["number"].as_str().expect("a number").to_string();
    let order = app.settled_order(&number).await;
    assert_eq!(order["status"], "Fulfillment Error", "{order}");
    number
}

async fn a_session_is_a_strict_http_only_cookie_that_signing_out_or_expiry_ends(db: Db) {
    let app = TestApp::spawn(db).await;
    let mut browser = Browser::new(&app);
    let page = browser.get("/dashboard/orders").await;
    assert_eq!((page.status, page.location.as_deref()), (StatusCode::SEE_OTHER, Some("/dashboard/sign-in")));

    // A checkout token, or one the host does not know, cannot sign in.
    let page = browser.sign_in(CHECKOUT_TOKEN).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.html);
    assert!(page.html.contains(r#"class="flash error""#) && page.html.contains("admin"), "{}", page.html);
    assert!(!browser.has_cookie("fh_session"), "no session for a checkout token");
    let page = browser.sign_in("no-such-token").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);
    assert!(!browser.has_cookie("fh_session"));

    let page = browser.sign_in(ADMIN_TOKEN).await;
    assert_eq!((page.status, page.location.as_deref()), (StatusCode::SEE_OTHER, Some("/dashboard/orders")), "{}", page.html);
    let session = page.set_cookies.iter().find(|line| line.starts_with("fh_session=")).expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/dashboard", "Max-Age="] {
        assert!(session.contains(attribute), "{attribute} in {session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP, no public_origin: a Secure cookie would not come back: {session}");
    let page = browser.get("/dashboard/orders").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains(r#"<table id="orders""#) && page.html.contains(r#"id="sign-out""#), "{}", page.html);
    // The database holds the session id's digest, never the id itself.
    let id = browser.cookies.iter().find(|(name, _)| name == "fh_session").expect("kept").1.clone();
    let mut connection: sqlx::AnyConnection = sqlx::Connection::connect(&app.database_url).await.expect("connect");
    let stored: Vec<String> = sqlx::query_scalar("SELECT id_sha256 FROM dashboard_sessions").fetch_all(&mut connection).await.expect("sessions");
    assert_eq!(stored, [crate::harness::digest(&id)]);

    // Signing out ends the session: the old cookie no longer works.
    let csrf = browser.csrf.clone();
    let page = browser.post("/dashboard/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!((page.status, page.location.as_deref()), (StatusCode::SEE_OTHER, Some("/dashboard/sign-in")));
    browser.cookies.push(("fh_session".into(), id));
    let page = browser.get("/dashboard/orders").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "a signed-out session is refused");

    // A session past its expiry is refused too.
    browser.cookies.clear();
    browser.sign_in(ADMIN_TOKEN).await;
    assert_eq!(browser.get("/dashboard/modules").await.status, StatusCode::OK);
    sqlx::query("UPDATE dashboard_sessions SET expires_at = 0").execute(&mut connection).await.expect("expire");
    let page = browser.get("/dashboard/modules").await;
    assert_eq!((page.status, page.location.as_deref()), (StatusCode::SEE_OTHER, Some("/dashboard/sign-in")));
}

async fn a_post_without_the_sessions_csrf_token_or_from_another_origin_changes_nothing(db: Db) {
    let app = TestApp::spawn(db).await;
    // A Complete order with an Open refund of its seat (EDX-100001), and an
    // order whose seat failed.
    let refund = app.refund_of_the_seat().await;
    let failed = failed_order(&app).await;
    app.lms.heal();
    let mut browser = Browser::new(&app);
    browser.sign_in(ADMIN_TOKEN).await;
    let page = browser.get(&format!("/dashboard/orders/{failed}")).await;
    assert!(page.html.contains(r#"<form id="retry""#), "{}", page.html);
    let csrf = browser.csrf.clone();

    // Every form post of the dashboard, each forged in every way.
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/dashboard/sign-out".to_string(), vec![]),
        (format!("/dashboard/orders/{failed}/retry"), vec![]),
        ("/dashboard/orders/EDX-100001/refunds".to_string(), vec![("line_ids", "2")]),
        (format!("/dashboard/refunds/{refund}/approve"), vec![]),
        (format!("/dashboard/refunds/{refund}/deny"), vec![]),
    ];
    let wrong = "0".repeat(64);
    let own = browser.origin.clone();
    let other_scheme = format!("https{}", own.trim_start_matches("http"));
    let forgery = |what, origin: Option<&str>, csrf: Option<&str>, fetch_site: Option<&'static str>| Forgery {
        what,
        origin: origin.map(str::to_string),
        csrf: csrf.map(str::to_string),
        fetch_site,
    };
    let forgeries = [
        forgery("no token", Some(&own), None, None),
        forgery("another session's token", Some(&own), Some(&wrong), None),
        forgery("another origin", Some("http://evil.example"), Some(&csrf), None),
        forgery("another port", Some("http://127.0.0.1:1"), Some(&csrf), None),
        forgery("another scheme", Some(&other_scheme), Some(&csrf), None),
        forgery("an opaque origin", Some("null"), Some(&csrf), None),
        forgery("a cross-site fetch", None, Some(&csrf), Some("cross-site")),
        forgery("a same-site fetch", None, Some(&csrf), Some("same-site")),
    ];
    for (path, fields) in &posts {
        for forged in &forgeries {
            let mut form: Vec<(&str, &str)> = fields.clone();
            if let Some(csrf) = &forged.csrf {
                form.push(("csrf", csrf));
            }
            let mut request = browser.http.post(format!("{}{path}", browser.origin)).form(&form);
            if let Some(origin) = &forged.origin {
                request = request.header("Origin", origin);
            }
            if let Some(site) = forged.fetch_site {
                request = request.header("Sec-Fetch-Site", site);
            }
            let what = forged.what;
            let page = browser.send(request).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}, {what}: {}", page.html);
            assert!(page.html.contains("CSRF"), "{path}, {what}: {}", page.html);
            assert!(page.set_cookies.is_empty(), "{path}, {what}");
        }
    }
    browser.csrf = csrf.clone();
    // Nothing changed: not the order, the refund, the refunds, nor the session.
    let (_, order) = app.get(&format!("/orders/{failed}"), ADMIN_TOKEN).await;
    assert_eq!(order["status"], "Fulfillment Error", "nothing was retried: {order}");
    assert_eq!(app.lms.enrollment("alice", COURSE).map(|enrollment| enrollment.is_active), Some(true), "only EDX-100001's seat");
    let (_, open) = app.get(&format!("/refunds/{refund}"), ADMIN_TOKEN).await;
    assert_eq!(open["status"], "Open", "neither approved nor denied: {open}");
    let (_, refunds) = app.get("/orders/EDX-100001/refunds", ADMIN_TOKEN).await;
    assert_eq!(refunds["count"], 1, "no refund made: {refunds}");
    assert!(app.payments.ledger().iter().all(|entry| entry.signed_minor_units > 0), "nothing credited");
    assert_eq!(browser.get("/dashboard/orders").await.status, StatusCode::OK, "still signed in");

    // The sign-in form is protected as well (login CSRF): without its
    // cookie, with its cookie and another token, from another origin.
    let mut stranger = Browser::new(&app);
    let page = stranger.post("/dashboard/sign-in", &[("token", ADMIN_TOKEN), ("csrf", "guess")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.html);
    stranger.get("/dashboard/sign-in").await;
    let page = stranger.post("/dashboard/sign-in", &[("token", ADMIN_TOKEN), ("csrf", &wrong)]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.html);
    let real = stranger.csrf.clone();
    let request = stranger
        .http
        .post(format!("{}/dashboard/sign-in", stranger.origin))
        .header("Origin", "http://evil.example")
        .form(&[("token", ADMIN_TOKEN), ("csrf", &real)]);
    assert_eq!(stranger.send(request).await.status, StatusCode::FORBIDDEN);
    assert!(!stranger.has_cookie("fh_session"));

    // The pages stay out of other sites' frames and out of caches.
    let page = browser.http.get(format!("{}/dashboard/orders/{failed}", browser.origin)).send().await.expect("answers");
    let header = |name: &str| page.headers().get(name).map(|value| value.to_str().expect("ASCII").to_string());
    assert_eq!(header("x-frame-options").as_deref(), Some("DENY"));
    assert!(header("content-security-policy").is_some_and(|policy| policy.contains("frame-ancestors 'none'")));
    assert_eq!(header("cache-control").as_deref(), Some("no-store"));

    // The real forms do it.
    let page = browser.post(&format!("/dashboard/orders/{failed}/retry"), &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let (_, order) = app.get(&format!("/orders/{failed}"), ADMIN_TOKEN).await;
    assert_eq!(order["status"], "Complete", "{order}");
    let page = browser.post(&format!("/dashboard/refunds/{refund}/deny"), &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let (_, denied) = app.get(&format!("/refunds/{refund}"), ADMIN_TOKEN).await;
    assert_eq!(denied["status"], "Denied", "{denied}");
}

/// Behind a proxy, the origin browsers use is a setting: a post from it is
/// taken, one from the address the host listens on is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_proxy_the_public_origin_is_the_one_posts_must_come_from() {
    let app = TestApp::spawn_with(Db::Sqlite, "[dashboard]\npublic_origin = \"https://ops.example.com/\"\n").await;
    let mut browser = Browser::new(&app);
    let page = browser.sign_in(ADMIN_TOKEN).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "the host's own address is not the public origin: {}", page.html);
    let csrf = browser.csrf.clone();
    let request = browser
        .http
        .post(format!("{}/dashboard/sign-in", browser.origin))
        .header("Origin", "https://ops.example.com")
        .form(&[("token", ADMIN_TOKEN), ("csrf", &csrf)]);
    let page = browser.send(request).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert!(browser.has_cookie("fh_session"));
    let session = page.set_cookies.iter().find(|line| line.starts_with("fh_session=")).expect("a session cookie");
    assert!(session.contains("Secure"), "browsers reach it over HTTPS: {session}");
}

async fn retry_and_refunds_from_the_order_page_run_what_the_api_runs(db: Db) {
    let app = TestApp::spawn(db).await;
    let number = failed_order(&app).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(ADMIN_TOKEN).await;
    let path = format!("/dashboard/orders/{number}");

    // The page tells what happened: the note, the attempt, the payment, the job.
    let page = browser.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = &page.html;
    assert!(html.contains(r#"<span id="order-status" class="badge status-error">Fulfillment Error</span>"#), "{html}");
    assert!(html.contains("LMS is down for maintenance"), "the note explains the failure: {html}");
    assert!(html.contains(r#"<td class="module" data-label="Module">enrollment</td>"#), "the attempt log names the module: {html}");
    assert!(html.contains(r#"<dd class="processor">test</dd>"#), "{html}");
    assert!(html.contains(&format!("<code>course_key</code> = {COURSE}")), "the seat's course is shown: {html}");
    assert!(html.contains(r#"<dd class="state">failed</dd>"#), "sync mode: no automatic retry is left: {html}");
    assert!(!html.contains(r#"id="new-refund""#), "a failed order cannot be refunded: {html}");

    // Retry while the LMS still fails: the same lines fail, the page says so.
    let csrf = browser.csrf.clone();
    let page = browser.post(&format!("{path}/retry"), &[("csrf", &csrf)]).await;
    assert_eq!(page.location.as_deref(), Some(format!("{path}?flash=retried-failed").as_str()), "{}", page.html);

    // The LMS recovers: the retry completes the order.
    app.lms.heal();
    let page = browser.post(&format!("{path}/retry"), &[("csrf", &csrf)]).await;
    let back = page.location.expect("back to the order");
    assert_eq!(back, format!("{path}?flash=retried-complete"));
    let page = browser.get(&back).await;
    assert!(page.html.contains("the order is Complete"), "{}", page.html);
    assert!(page.html.contains(r#"class="badge status-ok">Complete</span>"#), "{}", page.html);
    assert!(!page.html.contains(r#"<form id="retry""#), "a Complete order has nothing to retry");
    assert_eq!(app.lms.enrollment("alice", COURSE).map(|enrollment| enrollment.is_active), Some(true));
    // A second retry of a Complete order is refused as the API refuses it.
    let page = browser.post(&format!("{path}/retry"), &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::NOT_ACCEPTABLE, "{}", page.html);
    assert!(page.html.contains("not fulfillable"), "{}", page.html);

    // Refund the seat, approve it: credited and revoked.
    let page = browser.post(&format!("{path}/refunds"), &[("csrf", &csrf), ("line_ids", "1")]).await;
    assert_eq!(page.location.as_deref(), Some(format!("{path}?flash=refund-created").as_str()), "{}", page.html);
    let (_, refunds) = app.get(&format!("/orders/{number}/refunds"), ADMIN_TOKEN).await;
    let seat_refund = refunds["results"][0]["id"].as_i64().expect("a refund");
    // While the LMS fails, the approval credits but cannot revoke: the
    // page says so, and offers to finish it.
    app.lms.fail_all(503, "LMS is restarting");
    let page = browser.post(&format!("/dashboard/refunds/{seat_refund}/approve"), &[("csrf", &csrf)]).await;
    assert_eq!(page.location.as_deref(), Some(format!("{path}?flash=refund-failed").as_str()), "{}", page.html);
    let page = browser.get(&path).await;
    assert!(page.html.contains(r#"<td class="status" data-label="Status">Revocation Error</td>"#), "{}", page.html);
    assert!(page.html.contains("Approve again (finish)"), "{}", page.html);
    app.lms.heal();
    let page = browser.post(&format!("/dashboard/refunds/{seat_refund}/approve"), &[("csrf", &csrf)]).await;
    assert_eq!(page.location.as_deref(), Some(format!("{path}?flash=refund-approved").as_str()), "{}", page.html);
    let refund = app.settled_refund(seat_refund).await;
    assert_eq!(refund["status"], "Complete", "{refund}");
    assert_eq!(app.lms.enrollment("alice", COURSE).map(|enrollment| enrollment.is_active), Some(false), "revoked");
    let page = browser.get(&path).await;
    assert!(page.html.contains(&format!(r#"<tr data-refund="{seat_refund}">"#)), "{}", page.html);
    assert!(page.html.contains(r#"Line 1: <span class="state">Complete</span>"#), "{}", page.html);
    assert!(page.html.contains(r#"<dd class="refunded">49.00 USD</dd>"#), "{}", page.html);
    let seat = &page.html[page.html.find(r#"<tr data-line="1">"#).expect("the seat's row")..];
    let seat = &seat[..seat.find("</tr>").expect("row end")];
    assert!(seat.contains(r#"<span class="badge refunded">refunded</span>"#), "the line shows its refund: {seat}");
    let donation = &page.html[page.html.find(r#"<tr data-line="2">"#).expect("the donation's row")..];
    assert!(!donation[..donation.find("</tr>").expect("row end")].contains("refunded"), "{donation}");

    // Refund the donation and deny it: nothing is credited.
    let page = browser.post(&format!("{path}/refunds"), &[("csrf", &csrf), ("line_ids", "2")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let (_, refunds) = app.get(&format!("/orders/{number}/refunds"), ADMIN_TOKEN).await;
    let donation_refund = refunds["results"][0]["id"].as_i64().expect("a refund");
    assert_ne!(donation_refund, seat_refund);
    let page = browser.post(&format!("/dashboard/refunds/{donation_refund}/deny"), &[("csrf", &csrf)]).await;
    assert_eq!(page.location.as_deref(), Some(format!("{path}?flash=refund-denied").as_str()), "{}", page.html);
    let (_, refund) = app.get(&format!("/refunds/{donation_refund}"), ADMIN_TOKEN).await;
    assert_eq!(refund["status"], "Denied", "{refund}");
    assert_eq!(app.payments.ledger().iter().filter(|entry| entry.signed_minor_units < 0).count(), 1, "one credit: the seat's");
    // A line already refunded cannot be refunded again: the page says why.
    let page = browser.post(&format!("{path}/refunds"), &[("csrf", &csrf), ("line_ids", "1")]).await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.html);
    assert!(page.html.contains("already being refunded"), "{}", page.html);

    // The modules page counts the enrollment module's calls and failures:
    // describe at load, then the failed attempt and the two retries (a
    // claim and a fulfil each), and the revocation.
    let page = browser.get("/dashboard/modules").await;
    let start = page.html.find(r#"<tr data-module="enrollment">"#).expect("the enrollment module's row");
    let enrollment = &page.html[start..start + page.html[start..].find("</tr>").expect("row end")];
    let cell = |class: &str| {
        let open = format!(r#"class="{class}""#);
        let at = enrollment.find(&open).unwrap_or_else(|| panic!("{class} in {enrollment}"));
        let from = at + enrollment[at..].find('>').expect("the tag's end") + 1;
        enrollment[from..from + enrollment[from..].find("</td>").expect("cell end")].to_string()
    };
    assert_eq!(cell("status"), "<div>running</div>", "{enrollment}");
    assert!(cell("calls").parse::<u64>().expect("a count") >= 7, "{enrollment}");
    assert_eq!(cell("failures"), "0", "an LMS error is the module's answer, not its fault: {enrollment}");
    assert!(cell("p50").ends_with(" ms"), "{enrollment}");
}

async fn the_list_filters_by_status_user_number_and_date_and_pages(db: Db) {
    // Support staff for bob only: an admin token scoped to one user.
    let bobs_support = format!(
        "[[api.tokens]]\nname = \"bob-support\"\nsha256 = \"{}\"\nrole = \"admin\"\nuser = \"bob\"\n",
        crate::harness::digest("bob-support-token")
    );
    let app = TestApp::spawn_with(db, &bobs_support).await;
    let failed = failed_order(&app).await;
    app.lms.heal();
    let mut numbers = vec![failed.clone()];
    for index in 0..51 {
        let body = json!({
            "user": {"username": if index % 2 == 0 { "bob" } else { "carol" }, "email": "someone@example.com"},
            "basket": [{"sku": "DONATION", "quantity": 1}],
            "billing_address": {"country": "US"}, "total": "10.00", "currency": "USD",
            "payment": {"processor": "test", "token": "tok_success"},
        });
        let (status, order) = app.place(&body, None).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        numbers.push(order["number"].as_str().expect("a number").to_string());
    }
    let mut browser = Browser::new(&app);
    browser.sign_in(ADMIN_TOKEN).await;

    // Newest first, 50 a page, the failed order standing out.
    let page = browser.get("/dashboard/orders").await;
    let newest_first: Vec<String> = numbers.iter().rev().cloned().collect();
    assert_eq!(listed(&page.html), newest_first[..50]);
    assert!(page.html.contains(r#"<span id="count">52</span>"#), "{}", page.html);
    assert!(page.html.contains(r#"rel="next" href="/dashboard/orders?page=2""#), "{}", page.html);
    assert!(!page.html.contains(r#"rel="prev""#));
    let page = browser.get("/dashboard/orders?page=2").await;
    assert_eq!(listed(&page.html), newest_first[50..]);
    assert!(row(&page.html, &failed).contains(r#"class="attention""#), "{}", page.html);
    assert!(!row(&page.html, &numbers[1]).contains("attention"));
    assert!(row(&page.html, &failed).contains(r#"<td class="total" data-label="Total">59.00 USD</td>"#));

    let filtered = |query: &str| format!("/dashboard/orders?{query}");
    let page = browser.get(&filtered("status=Fulfillment+Error")).await;
    assert_eq!(listed(&page.html), std::slice::from_ref(&failed));
    let page = browser.get(&filtered("username=bob&page=")).await;
    assert_eq!(listed(&page.html).len(), 26, "{}", page.html);
    assert!(page.html.contains(r#"<span id="count">26</span>"#));
    let page = browser.get(&filtered(&format!("number={}", numbers[7]))).await;
    assert_eq!(listed(&page.html), [numbers[7].clone()]);
    // Placement times set in the database (both columns, as the host
    // writes them): ten orders on 1 March, the rest on 2 March up to its
    // last millisecond, the failed one at the first instant of 3 March.
    let mut connection: sqlx::AnyConnection = sqlx::Connection::connect(&app.database_url).await.expect("connect");
    for (index, number) in numbers.iter().enumerate() {
        let at = match index {
            0 => "2026-03-03T00:00:00Z",
            1..=10 => "2026-03-01T10:00:00Z",
            _ => "2026-03-02T23:59:59.999Z",
        };
        place_at(&mut connection, number, at, None).await;
    }
    let count_of = |html: &str| {
        let start = html.find(r#"<span id="count">"#).expect("a count") + r#"<span id="count">"#.len();
        html[start..start + html[start..].find('<').expect("end")].parse::<u64>().expect("a number")
    };
    for (query, expected) in [
        ("from=2026-03-02&to=2026-03-02", 41),
        ("from=2026-03-03", 1),
        ("to=2026-03-01", 10),
        ("from=2026-03-01&to=2026-03-03", 52),
        ("from=2026-03-04", 0),
        ("to=2026-02-28", 0),
        ("from=2026-03-02&to=2026-03-02&username=bob", 21),
    ] {
        let page = browser.get(&filtered(query)).await;
        assert_eq!(count_of(&page.html), expected, "{query}: {}", page.html);
    }
    let page = browser.get(&filtered("from=2026-03-03")).await;
    assert_eq!(listed(&page.html), std::slice::from_ref(&failed));
    assert!(row(&page.html, &failed).contains(r#"<td class="date" data-label="Date">2026-03-03 00:00</td>"#), "{}", page.html);
    let page = browser.get(&filtered("to=2026-03-01")).await;
    assert!(row(&page.html, &numbers[1]).contains(r#"<td class="date" data-label="Date">2026-03-01 10:00</td>"#), "{}", page.html);

    // Past the last page: nothing listed, and the way back.
    let page = browser.get(&filtered("page=100")).await;
    assert!(listed(&page.html).is_empty());
    assert!(page.html.contains(r#"0–0 of <span id="count">52</span>"#), "{}", page.html);
    assert!(page.html.contains(r#"rel="prev" href="/dashboard/orders?page=2""#), "{}", page.html);

    // An order Open for longer than it should be stands out; one Open
    // for a moment does not.
    place_at(&mut connection, &numbers[3], "2026-01-01T00:00:00Z", Some("Open")).await;
    place_at(&mut connection, &numbers[4], &time_now_rfc3339(), Some("Open")).await;
    let page = browser.get("/dashboard/orders?status=Open").await;
    assert_eq!(listed(&page.html), [numbers[4].clone(), numbers[3].clone()]);
    assert!(row(&page.html, &numbers[3]).contains(r#"class="attention""#), "{}", page.html);
    assert!(!row(&page.html, &numbers[4]).contains("attention"), "{}", page.html);

    // A token scoped to one user shows that user's orders only.
    let mut bobs = Browser::new(&app);
    assert_eq!(bobs.sign_in("bob-support-token").await.status, StatusCode::SEE_OTHER);
    let page = bobs.get("/dashboard/orders").await;
    assert!(page.html.contains(r#"<span id="count">26</span>"#), "{}", page.html);
    let carols = &numbers[2];
    assert_eq!(bobs.get(&format!("/dashboard/orders/{carols}")).await.status, StatusCode::NOT_FOUND);
    let csrf = bobs.csrf.clone();
    let page = bobs.post(&format!("/dashboard/orders/{carols}/refunds"), &[("csrf", &csrf), ("line_ids", "1")]).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND, "{}", page.html);

    // A bad filter is named, and the form keeps what was typed.
    let page = browser.get(&filtered("from=2026-13-45&username=bob")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.html.contains("from: `2026-13-45` is not a date"), "{}", page.html);
    assert!(page.html.contains(r#"name="username" value="bob""#), "{}", page.html);
    let page = browser.get(&filtered("status=Shipped")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.html.contains("unknown order status `Shipped`"), "{}", page.html);
    // A number that looks like markup is shown as text.
    let page = browser.get(&filtered("username=%3Cscript%3Ealert(1)%3C%2Fscript%3E")).await;
    assert!(!page.html.contains("<script>alert(1)"), "escaped: {}", page.html);
}

/// Sets when order `number` was placed (RFC 3339 `at`, in both columns, as
/// the host writes them), and its status.
async fn place_at(connection: &mut sqlx::AnyConnection, number: &str, at: &str, status: Option<&str>) {
    let unix_ms = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).expect("RFC 3339")
        .unix_timestamp_nanos()
        / 1_000_000;
    sqlx::query("UPDATE orders SET date_placed = $1, created_at = $2, status = COALESCE($3, status) WHERE number = $4")
        .bind(at)
        .bind(i64::try_from(unix_ms).expect("in range"))
        .bind(status)
        .bind(number)
        .execute(&mut *connection)
        .await
        .expect("updates the order");
}

fn time_now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).expect("formats")
}

/// The element `<dd id="{id}" ...>...</dd>` of a page, if any.
fn element<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let start = html.find(&format!(r#"id="{id}""#))?;
    let end = html[start..].find("</dd>")?;
    Some(&html[start..start + end])
}

async fn the_order_page_shows_the_shipping_and_both_addresses(db: Db) {
    let app = TestApp::spawn(db).await;
    let mut body = shipped(checkout("59.00", "tok_success"));
    body["shipping_address"]["line1"] = json!("10 <b>Downing</b> St");
    let (status, placed) = app.place(&body, None).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let (status, bare) = app.place(&checkout("59.00", "tok_success"), None).await;
    assert_eq!(status, StatusCode::CREATED, "{bare}");
    let mut browser = Browser::new(&app);
    browser.sign_in(ADMIN_TOKEN).await;

    let page = browser.get("/dashboard/orders/EDX-100001").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("<dd>ups-ground, 5.00 USD</dd>"), "{}", page.html);
    let ship_to = element(&page.html, "shipping-address").unwrap_or_else(|| panic!("a shipping address: {}", page.html));
    assert_eq!(
        ship_to,
        r#"id="shipping-address" class="address">Bob Jones<br>10 &#60;b&#62;Downing&#60;/b&#62; St<br>London, Greater London SW1A 2AA<br>GB<br>+44 20 7925 0918"#,
        "blank line2 left out, the markup escaped"
    );
    let bill_to = element(&page.html, "billing-address").unwrap_or_else(|| panic!("a billing address: {}", page.html));
    assert_eq!(bill_to, r#"id="billing-address" class="address">Alice Smith<br>1 Main St<br>Apt 2<br>Cambridge, MA 02139<br>US"#);

    let page = browser.get("/dashboard/orders/EDX-100002").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert_eq!(element(&page.html, "shipping-address"), None, "no address, no entry");
    assert!(element(&page.html, "billing-address").is_some_and(|bill_to| bill_to.ends_with(">US")), "{}", page.html);
}
