//! Who may read what (issue 10), over real HTTP on both databases: a
//! checkout token sees the orders placed with it (`orders = "own"`, its
//! default), `orders = "all"` sees every order, `user = "..."` one user's;
//! an order outside a token's scope is 404, in reads, lists, the staff
//! retry and refunds, and an idempotent replay does not show it either.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, CHECKOUT_TOKEN, Db, TestApp, checkout, digest};
use crate::on_both_databases;

on_both_databases!(
    a_checkout_token_reads_and_lists_only_the_orders_it_placed,
    a_replay_with_another_tokens_key_does_not_show_its_order,
    a_scoped_admin_token_finds_no_order_outside_its_scope,
    a_token_limited_to_a_user_reads_and_places_only_that_users_orders,
);

const SHOP_X: &str = "shop-x-token";
const SHOP_Y: &str = "shop-y-token";
const REPORTING: &str = "reporting-token";
const SUPPORT: &str = "support-token";
const ALICE_APP: &str = "alice-app-token";

/// `[[api.tokens]]` entries: (name, token, role, more keys).
fn tokens(entries: &[(&str, &str, &str, &str)]) -> String {
    entries
        .iter()
        .map(|(name, token, role, more)| {
            format!("[[api.tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\nrole = \"{role}\"\n{more}\n", digest(token))
        })
        .collect()
}

/// Two storefronts with the default scope of checkout tokens.
fn two_shops() -> String {
    tokens(&[("shop-x", SHOP_X, "checkout", ""), ("shop-y", SHOP_Y, "checkout", "")])
}

fn order_of(username: &str) -> Value {
    let mut body = checkout("59.00", "tok_success");
    body["user"] = json!({"username": username, "email": format!("{username}@example.com")});
    body
}

async fn place_with(app: &TestApp, token: &str, body: &Value, key: Option<&str>) -> (StatusCode, Value) {
    let mut request = app.http.post(format!("{}/orders", app.base)).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    app.send(request, Some(token)).await
}

async fn placed(app: &TestApp, token: &str, username: &str) -> String {
    let (status, order) = place_with(app, token, &order_of(username), None).await;
    assert!(matches!(status, StatusCode::CREATED | StatusCode::ACCEPTED), "{status}: {order}");
    order["number"].as_str().expect("a number").to_string()
}

/// The numbers `token` lists at `path` (`/orders?...`), and the count.
async fn listed(app: &TestApp, token: &str, path: &str) -> (u64, Vec<String>) {
    let (status, list) = app.get(path, token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let numbers = list["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|order| order["number"].as_str().unwrap_or_default().to_string())
        .collect();
    (list["count"].as_u64().expect("a count"), numbers)
}

fn assert_not_found(status: StatusCode, body: &Value, what: &str) {
    assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {body}");
    assert_eq!(body["error"]["code"], "not_found", "{what}: {body}");
}

async fn a_checkout_token_reads_and_lists_only_the_orders_it_placed(db: Db) {
    let app = TestApp::spawn_with(db, &two_shops()).await;
    let x_order = placed(&app, SHOP_X, "alice").await;
    let y_order = placed(&app, SHOP_Y, "bob").await;
    let y_alice = placed(&app, SHOP_Y, "alice").await;

    assert_eq!(listed(&app, SHOP_X, "/orders").await, (1, vec![x_order.clone()]));
    assert_eq!(listed(&app, SHOP_Y, "/orders").await, (2, vec![y_alice.clone(), y_order.clone()]));
    assert_eq!(listed(&app, SHOP_X, "/orders?username=bob").await, (0, vec![]));
    assert_eq!(listed(&app, SHOP_X, "/orders?username=alice").await, (1, vec![x_order.clone()]));
    for number in [&y_order, &y_alice] {
        let (status, body) = app.get(&format!("/orders/{number}"), SHOP_X).await;
        assert_not_found(status, &body, "shop x reads shop y's order");
        assert!(!body.to_string().contains("bob@example.com"), "{body}");
    }
    let (status, body) = app.get(&format!("/orders/{x_order}"), SHOP_Y).await;
    assert_not_found(status, &body, "shop y reads shop x's order");
    let (status, own) = app.get(&format!("/orders/{x_order}"), SHOP_X).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    // The harness's storefront placed none of them; the admin sees all.
    assert_eq!(listed(&app, CHECKOUT_TOKEN, "/orders").await.0, 0);
    assert_eq!(listed(&app, ADMIN_TOKEN, "/orders").await.0, 3);

    // An order placed before placers were recorded (NULL) is the admins'.
    let mut connection: sqlx::AnyConnection = sqlx::Connection::connect(&app.database_url).await.expect("connect");
    sqlx::query("UPDATE orders SET placed_by = NULL WHERE number = $1")
        .bind(&x_order)
        .execute(&mut connection)
        .await
        .expect("forget who placed it");
    let (status, body) = app.get(&format!("/orders/{x_order}"), SHOP_X).await;
    assert_not_found(status, &body, "an order of unknown placer, to a checkout token");
    assert_eq!(app.get(&format!("/orders/{x_order}"), ADMIN_TOKEN).await.0, StatusCode::OK);
}

async fn a_replay_with_another_tokens_key_does_not_show_its_order(db: Db) {
    let app = TestApp::spawn_with(db, &two_shops()).await;
    let body = order_of("alice");
    let (status, order) = place_with(&app, SHOP_X, &body, Some("shared-key")).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let number = order["number"].as_str().expect("a number").to_string();

    // The same key and body from another storefront: no order, no charge.
    let (status, same) = place_with(&app, SHOP_Y, &body, Some("shared-key")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{same}");
    assert!(!same.to_string().contains(&number), "the answer shows the other storefront's order: {same}");
    // Another body gives the same answer: nothing tells whether it matched.
    let (status, other) = place_with(&app, SHOP_Y, &order_of("bob"), Some("shared-key")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{other}");
    assert_eq!(other["error"]["message"], same["error"]["message"]);
    assert_eq!(app.charges(), 1);
    // Its own storefront still replays it.
    let (status, replayed) = place_with(&app, SHOP_X, &body, Some("shared-key")).await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["number"], json!(number));
}

async fn a_scoped_admin_token_finds_no_order_outside_its_scope(db: Db) {
    let extra = tokens(&[
        ("shop-x", SHOP_X, "checkout", ""),
        ("support", SUPPORT, "admin", "orders = \"own\""),
        ("reporting", REPORTING, "checkout", "orders = \"all\""),
    ]);
    let app = TestApp::spawn_with(db, &extra).await;
    let number = placed(&app, SHOP_X, "alice").await;
    let order = app.settled_order(&number).await;
    assert_eq!(order["status"], "Complete", "{order}");
    // A checkout token with `orders = "all"` reads it; a support token with
    // `orders = "own"` does not, in any endpoint.
    assert_eq!(listed(&app, REPORTING, "/orders").await, (1, vec![number.clone()]));
    assert_eq!(listed(&app, SUPPORT, "/orders").await, (0, vec![]));
    let (status, body) = app.get(&format!("/orders/{number}"), SUPPORT).await;
    assert_not_found(status, &body, "read");
    let (status, body) = app.put(&format!("/orders/{number}/fulfill"), None, SUPPORT).await;
    assert_not_found(status, &body, "staff retry");
    let refund = json!({"order_number": number, "line_ids": [1]});
    let (status, body) = app.send(app.http.post(format!("{}/refunds", app.base)).json(&refund), Some(SUPPORT)).await;
    assert_not_found(status, &body, "refund creation");
    let (status, created) = app.send(app.http.post(format!("{}/refunds", app.base)).json(&refund), Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().expect("an id");
    let (status, body) = app.get(&format!("/refunds/{id}"), SUPPORT).await;
    assert_not_found(status, &body, "refund read");
    let (status, body) = app.put(&format!("/refunds/{id}/process"), Some(json!({"action": "deny"})), SUPPORT).await;
    assert_not_found(status, &body, "refund decision");
    let (status, refund) = app.get(&format!("/refunds/{id}"), ADMIN_TOKEN).await;
    assert_eq!((status, refund["status"].as_str()), (StatusCode::OK, Some("Open")), "the scoped decision changed nothing");
}

async fn a_token_limited_to_a_user_reads_and_places_only_that_users_orders(db: Db) {
    let extra = tokens(&[
        ("shop-x", SHOP_X, "checkout", ""),
        ("alice-app", ALICE_APP, "checkout", "orders = \"all\"\nuser = \"alice\""),
    ]);
    let app = TestApp::spawn_with(db, &extra).await;
    let alice_by_x = placed(&app, SHOP_X, "alice").await;
    let bob_by_x = placed(&app, SHOP_X, "bob").await;
    let (status, body) = place_with(&app, ALICE_APP, &order_of("bob"), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "user.username", "{body}");
    assert_eq!(app.charges(), 2, "nothing charged for bob");
    let alice_by_app = placed(&app, ALICE_APP, "alice").await;

    assert_eq!(listed(&app, ALICE_APP, "/orders").await, (2, vec![alice_by_app.clone(), alice_by_x.clone()]));
    assert_eq!(listed(&app, ALICE_APP, "/orders?username=bob").await, (0, vec![]));
    let (status, body) = app.get(&format!("/orders/{bob_by_x}"), ALICE_APP).await;
    assert_not_found(status, &body, "bob's order to alice's token");
    assert_eq!(app.get(&format!("/orders/{alice_by_x}"), ALICE_APP).await.0, StatusCode::OK);
}
