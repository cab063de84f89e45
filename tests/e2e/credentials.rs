//! Credentials held by the host (`[modules.credentials]`) against an LMS
//! that enforces edx-platform's rule: the API key for the Enrollment API, a
//! JWT from the OAuth2 token endpoint for the Entitlements API.

use fulfillment_host::dispatch;
use fulfillment_host::model::{LineStatus, Order, OrderStatus};
use fulfillment_host::runtime::{RevokeResult, Runtime};
use fulfillment_host::settings::Settings;
use fulfillment_tests::lms::{CLIENT_ID, CLIENT_SECRET, LmsApi, LmsStandIn};
use serde_json::json;

use crate::support::{self, API_KEY, line, module_entry, notes_for, order, seat};

const DEMO: &str = "course-v1:edX+DemoX+Demo";

fn entitlement(id: u64, course_uuid: &str) -> serde_json::Value {
    line(id, "Course Entitlement", &format!("ENT-{id}"), json!({"UUID": course_uuid, "certificate_type": "verified"}))
}

/// The course-entitlement module with `credentials` (a TOML tail) for the LMS.
async fn entitlement_runtime(lms: &LmsStandIn, credentials: &str, limits: &[(&str, &str)]) -> Runtime {
    let url = lms.url();
    let mut entry = module_entry("course-entitlement", "course-entitlement", &[&url], &[("lms_url", &url)]);
    if !limits.is_empty() {
        entry = support::with_limits(entry, limits);
    }
    support::runtime(&format!("{entry}{credentials}")).await
}

/// The host's OAuth2 credentials for the stand-in, as shipped_modules has them.
fn oauth(lms: &LmsStandIn) -> String {
    support::with_credentials(String::new(), &lms.url(), LmsApi::Entitlements)
}

async fn fulfill(runtime: &Runtime, number: &str, lines: Vec<serde_json::Value>) -> Order {
    let mut order = order(number, lines);
    dispatch::fulfill_order(runtime, &mut order).await.expect("dispatch runs");
    order
}

#[tokio::test]
async fn the_entitlements_api_refuses_an_api_key_with_drf_detail() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS starts");
    let url = lms.url();
    // What the settings had before the host held credentials: the API key
    // in the module's config, sent by the module.
    let entry = module_entry("course-entitlement", "course-entitlement", &[&url], &[("lms_url", &url), ("api_key", API_KEY)]);
    let runtime = support::runtime(&entry).await;
    let order = fulfill(&runtime, "EDX-700", vec![entitlement(1, "course-a")]).await;
    assert_eq!(order.lines[0].status, LineStatus::ConfigurationError);
    assert_eq!(
        notes_for(&order, 1),
        ["Fulfillment of order EDX-700 failed: the LMS answered 401 for course course-a: Authentication credentials were not provided. \
          (give the host the LMS's credentials in [modules.credentials])"]
    );
    assert!(lms.entitlements_of(None).is_empty(), "nothing was created");
}

#[tokio::test]
async fn the_host_fetches_one_jwt_for_every_order_and_the_module_never_sees_it() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS starts");
    let runtime = support::runtime(&support::shipped_modules(&lms.url())).await;
    for number in ["EDX-701", "EDX-702", "EDX-703"] {
        let order = fulfill(&runtime, number, vec![seat(1, DEMO, "verified"), entitlement(2, &format!("course-{number}"))]).await;
        assert_eq!(order.status, OrderStatus::Complete, "{:?}", order.notes);
    }
    let tokens = lms.token_requests();
    assert_eq!(tokens.len(), 1, "one token for the three orders: {tokens:?}");
    assert_eq!(tokens[0].grant_type.as_deref(), Some("client_credentials"));
    assert_eq!(tokens[0].client_id.as_deref(), Some(CLIENT_ID));
    assert_eq!(tokens[0].token_type.as_deref(), Some("jwt"));
    let requests = lms.requests();
    let (entitlements, enrollments): (Vec<_>, Vec<_>) =
        requests.iter().partition(|request| request.path.starts_with("/api/entitlements/"));
    assert_eq!((entitlements.len(), enrollments.len()), (3, 3));
    let first_jwt = entitlements[0].authorization.clone().expect("a JWT");
    for request in &entitlements {
        assert_eq!(request.authorization.as_ref(), Some(&first_jwt), "the cached token");
        assert!(first_jwt.starts_with("JWT "), "{first_jwt}");
        assert_eq!(request.api_key, None);
        assert_eq!(request.status, 201);
    }
    for request in &enrollments {
        assert_eq!(request.api_key.as_deref(), Some(API_KEY));
        assert_eq!(request.authorization, None);
    }
    // The modules' config tables hold no secret: only the LMS's URL.
    let settings = support::settings(&support::shipped_modules(&lms.url()));
    for module in settings.modules.iter().filter(|module| !module.credentials.is_empty()) {
        assert_eq!(module.config.keys().collect::<Vec<_>>(), ["lms_url"], "{}", module.name);
        let shown = format!("{module:?}");
        assert!(!shown.contains(API_KEY) && !shown.contains(CLIENT_SECRET), "{shown}");
    }
}

#[tokio::test]
async fn a_token_is_replaced_before_it_expires() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS starts");
    // Tokens that live 30 s, replaced 40 s before they expire: each request
    // must get a new one, and none is ever sent past its time.
    lms.set_token_lifetime_s(30);
    let credentials = oauth(&lms).replace("token_type = \"jwt\"\n", "token_type = \"jwt\"\nrefresh_before_ms = 40000\n");
    let runtime = entitlement_runtime(&lms, &credentials, &[]).await;
    for (index, number) in ["EDX-710", "EDX-711", "EDX-712"].into_iter().enumerate() {
        let order = fulfill(&runtime, number, vec![entitlement(1, &format!("course-{index}"))]).await;
        assert_eq!(order.status, OrderStatus::Complete, "{:?}", order.notes);
    }
    assert_eq!(lms.token_requests().len(), 3, "a new token for each request");
    let statuses: Vec<u16> = lms.requests().iter().map(|request| request.status).collect();
    assert_eq!(statuses, [201, 201, 201]);
}

#[tokio::test]
async fn a_token_the_lms_no_longer_accepts_is_fetched_again_once() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS starts");
    let runtime = entitlement_runtime(&lms, &oauth(&lms), &[]).await;
    assert_eq!(fulfill(&runtime, "EDX-720", vec![entitlement(1, "course-a")]).await.status, OrderStatus::Complete);
    lms.rotate_signing_key();
    let order = fulfill(&runtime, "EDX-721", vec![entitlement(1, "course-b")]).await;
    assert_eq!(order.status, OrderStatus::Complete, "{:?}", order.notes);
    let statuses: Vec<u16> = lms.requests().iter().map(|request| request.status).collect();
    assert_eq!(statuses, [201, 401, 201], "the old token refused once, the new one accepted");
    assert_eq!(lms.token_requests().len(), 2);
    // The revocation goes through the same credential.
    let revoked = dispatch::revoke_line(&runtime, &order, 1, 1).await.expect("revoke runs");
    assert_eq!(revoked, RevokeResult::Revoked { note: None });
    let delete = lms.requests().pop().expect("the DELETE");
    assert_eq!((delete.method.as_str(), delete.status), ("DELETE", 204));
    assert!(delete.authorization.is_some_and(|value| value.starts_with("JWT ")));
}

#[tokio::test]
async fn a_refused_client_is_a_configuration_error_that_names_the_token_endpoint_not_the_secret() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let wrong = dir.path().join("wrong-secret");
    std::fs::write(&wrong, "not-the-secret-at-all\n").expect("write");
    let credentials = format!(
        "[modules.credentials.{url:?}]\nkind = \"oauth2-client-credentials\"\ntoken_url = \"{url}/oauth2/access_token\"\n\
         client_id = {CLIENT_ID:?}\nclient_secret = {{ file = {wrong:?} }}\ntoken_type = \"jwt\"\n",
        url = lms.url(),
    );
    let runtime = entitlement_runtime(&lms, &credentials, &[]).await;
    let order = fulfill(&runtime, "EDX-730", vec![entitlement(1, "course-a")]).await;
    assert_eq!(order.lines[0].status, LineStatus::ConfigurationError);
    let note = &notes_for(&order, 1)[0];
    assert!(
        note.contains(&format!("the token endpoint {}/oauth2/access_token refused the client credentials: 401", lms.url())),
        "{note}"
    );
    assert!(note.contains("invalid_client") && !note.contains("not-the-secret"), "{note}");
    assert!(lms.requests().is_empty(), "nothing was sent to the API without a token");
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_a_network_error() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS starts");
    let closed = support::closed_port_url();
    let credentials = oauth(&lms).replace(&format!("{}/oauth2/access_token", lms.url()), &format!("{closed}/oauth2/access_token"));
    let runtime = entitlement_runtime(&lms, &credentials, &[]).await;
    let order = fulfill(&runtime, "EDX-731", vec![entitlement(1, "course-a")]).await;
    assert_eq!(order.lines[0].status, LineStatus::NetworkError, "{:?}", order.notes);
    assert!(lms.requests().is_empty());
}

#[tokio::test]
async fn an_entitlement_whose_answer_was_lost_is_found_on_the_retry() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS starts");
    let runtime = entitlement_runtime(&lms, &oauth(&lms), &[("http_timeout_ms", "1000")]).await;
    // The LMS creates the entitlement, then answers too late.
    lms.delay_answers(std::time::Duration::from_secs(5));
    let first = fulfill(&runtime, "EDX-740", vec![entitlement(1, "course-a")]).await;
    assert_eq!(first.lines[0].status, LineStatus::NetworkError, "{:?}", first.notes);
    let created = lms.entitlements_of(Some("alice"));
    assert_eq!(created.len(), 1, "the LMS made it: {created:?}");
    lms.heal();

    // The retry: the LMS refuses a second one (400), the module finds the
    // first and completes the line with it.
    let retried = fulfill(&runtime, "EDX-740", vec![entitlement(1, "course-a")]).await;
    assert_eq!(retried.lines[0].status, LineStatus::Complete, "{:?}", retried.notes);
    assert_eq!(retried.lines[0].attributes["entitlement_uuid"], created[0].0);
    assert_eq!(
        notes_for(&retried, 1),
        [format!("The LMS already had entitlement {} for course course-a and order EDX-740; the line uses it", created[0].0)]
    );
    assert_eq!(lms.entitlements_of(None).len(), 1, "still one entitlement");
    let statuses: Vec<(String, u16)> = lms.requests().into_iter().map(|request| (request.method, request.status)).collect();
    assert_eq!(statuses[1..], [("POST".to_string(), 400), ("GET".to_string(), 200)]);
}

#[tokio::test]
async fn a_revoked_entitlement_of_the_order_is_not_reused() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS starts");
    let runtime = entitlement_runtime(&lms, &oauth(&lms), &[]).await;
    let first = fulfill(&runtime, "EDX-741", vec![entitlement(1, "course-a")]).await;
    dispatch::revoke_line(&runtime, &first, 1, 1).await.expect("revoke runs");
    let again = fulfill(&runtime, "EDX-741", vec![entitlement(1, "course-a")]).await;
    assert_eq!(again.lines[0].status, LineStatus::ServerError);
    assert!(notes_for(&again, 1)[0].ends_with("but it was revoked"), "{:?}", again.notes);
}

#[test]
fn settings_refuse_a_credential_for_a_destination_the_module_may_not_call() {
    let toml = format!(
        "{}[modules.credentials.\"http://127.0.0.1:1\"]\nkind = \"bearer\"\nsecret = {{ env = \"PATH\" }}\n",
        module_entry("enrollment", "enrollment", &["http://127.0.0.1:2"], &[])
    );
    let error = Settings::parse(&toml, std::path::Path::new("/test/settings.toml")).expect_err("refused");
    assert_eq!(
        error.to_string(),
        "invalid settings file /test/settings.toml: module `enrollment`, credentials for http://127.0.0.1:1: the destination is not in the module's allowed_hosts"
    );
}

#[test]
fn settings_name_the_module_and_the_variable_of_a_missing_secret() {
    let toml = format!(
        "{}[modules.credentials.\"http://127.0.0.1:2\"]\nkind = \"header\"\nheader = \"X-Edx-Api-Key\"\nsecret = {{ env = \"FULFILLMENT_TEST_NO_SUCH_SECRET\" }}\n",
        module_entry("enrollment", "enrollment", &["http://127.0.0.1:2"], &[])
    );
    let error = Settings::parse(&toml, std::path::Path::new("/test/settings.toml")).expect_err("refused");
    assert_eq!(
        error.to_string(),
        "invalid settings file /test/settings.toml: module `enrollment`, credentials for http://127.0.0.1:2: secret: environment variable `FULFILLMENT_TEST_NO_SUCH_SECRET` is not set (or not UTF-8)"
    );
}

#[tokio::test]
async fn get_modules_shows_each_credential_kind_and_destination_never_a_value() {
    let app = crate::harness::TestApp::spawn(crate::harness::Db::Sqlite).await;
    let (status, modules) = app.get("/modules", crate::harness::ADMIN_TOKEN).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{modules}");
    let credentials = |name: &str| {
        modules
            .as_array()
            .and_then(|modules| modules.iter().find(|module| module["name"] == name))
            .map(|module| module["credentials"].clone())
    };
    // "http://127.0.0.1:PORT", as allowed_hosts writes it.
    let shown = app.lms.url();
    assert_eq!(credentials("enrollment"), Some(json!([{"destination": shown, "kind": "header X-Edx-Api-Key"}])));
    assert_eq!(credentials("course-entitlement"), Some(json!([{"destination": shown, "kind": "oauth2-client-credentials"}])));
    assert_eq!(credentials("donation"), Some(json!([])));
    let text = modules.to_string();
    assert!(!text.contains(API_KEY) && !text.contains(CLIENT_SECRET), "{text}");
}

#[test]
fn settings_refuse_two_credentials_for_one_destination() {
    let toml = format!(
        "{}[modules.credentials.\"https://lms.example.com\"]\nkind = \"bearer\"\nsecret = {{ env = \"PATH\" }}\n\
         [modules.credentials.\"https://lms.example.com:443\"]\nkind = \"bearer\"\nsecret = {{ env = \"PATH\" }}\n",
        module_entry("enrollment", "enrollment", &["https://lms.example.com"], &[])
    );
    let error = Settings::parse(&toml, std::path::Path::new("/test/settings.toml")).expect_err("refused").to_string();
    assert!(
        error.contains("credentials `https://lms.example.com` and `https://lms.example.com:443` are for the same destination https://lms.example.com:443"),
        "{error}"
    );
}

#[tokio::test]
async fn concurrent_orders_share_one_token_fetch_and_one_failed_fetch() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS starts");
    let runtime = entitlement_runtime(&lms, &oauth(&lms), &[]).await;
    // A failing token endpoint: the orders waiting on the fetch get its
    // failure instead of each asking again.
    lms.fail_token_endpoint(Some((503, "down for maintenance")));
    let orders = futures_util::future::join_all(
        (0..4).map(|index| {
            let runtime = &runtime;
            async move { fulfill(runtime, &format!("EDX-75{index}"), vec![entitlement(1, "course-a")]).await }
        }),
    )
    .await;
    for order in &orders {
        assert_eq!(order.lines[0].status, LineStatus::ServerError, "{:?}", order.notes);
        assert!(notes_for(order, 1)[0].contains("failed: it answered 503 Service Unavailable"), "{:?}", order.notes);
    }
    assert_eq!(lms.token_requests().len(), 1, "one fetch for the four orders");
    assert!(lms.requests().is_empty(), "nothing sent without a token");

    // Working again: a fresh runtime (no recent failure), four orders at
    // once, one token.
    lms.fail_token_endpoint(None);
    let runtime = entitlement_runtime(&lms, &oauth(&lms), &[]).await;
    let orders = futures_util::future::join_all(
        (0..4).map(|index| {
            let runtime = &runtime;
            async move { fulfill(runtime, &format!("EDX-76{index}"), vec![entitlement(1, &format!("course-{index}"))]).await }
        }),
    )
    .await;
    assert!(orders.iter().all(|order| order.status == OrderStatus::Complete), "{orders:?}");
    assert_eq!(lms.token_requests().len(), 2, "one more fetch for the four orders");
}
