//! Viewer access (README "Viewer access"): a publish token's `embedOrigins` (the sites that may
//! frame `/watch` and the web pages that may play over WHEP) and `secureViewer` (watching needs a
//! subscribe token or a viewer grant made from one).

use reqwest::{header, Client, Response};
use serde_json::{json, Value};

use crate::{
    helpers::*,
    rtc::{self, PublishOptions},
    whip_whep::{offer_with, streamer, wait_stream},
};

/// A recvonly VP8 offer: enough for the server to answer a viewer (ICE never completes).
fn viewer_offer() -> String {
    offer_with("m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n")
}

/// The `frame-ancestors` directive of a stream's `/watch` page (there must be exactly one).
async fn frame_ancestors(app: &TestApp, account: &str, stream: &str) -> String {
    let page = app.client().get(app.url(&format!("/watch/{account}/{stream}"))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    let directives: Vec<&str> = policy.split(';').map(str::trim).filter(|d| d.starts_with("frame-ancestors")).collect();
    assert_eq!(directives.len(), 1, "{policy}");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    directives[0].to_owned()
}

/// A WHEP offer from a page of `origin` (`None`: not a web page).
async fn whep_from(app: &TestApp, account: &str, stream: &str, origin: Option<&str>) -> Response {
    whep(app, account, stream, origin, None).await
}

/// A WHEP offer with `Authorization: Bearer {bearer}` when given.
async fn whep(app: &TestApp, account: &str, stream: &str, origin: Option<&str>, bearer: Option<&str>) -> Response {
    let mut request = Client::new()
        .post(app.url(&format!("/whep/{account}/{stream}")))
        .header(header::CONTENT_TYPE, "application/sdp")
        .body(viewer_offer());
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.unwrap()
}

async fn patch_token(app: &TestApp, client: &Client, id: &str, body: Value) -> Value {
    let response = client.patch(app.url(&format!("/api/v1/tokens/{id}"))).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_origins_decide_who_frames_the_viewer_and_which_pages_play() {
    let app = spawn_app().await;
    let s = streamer(
        &app,
        "embed@example.com",
        json!({ "label": "show", "streams": ["show"], "embedOrigins": ["https://Fans.example/", " "] }),
    )
    .await;
    let token: Value =
        s.client.get(app.url(&format!("/api/v1/tokens/{}", s.token_id))).send().await.unwrap().json().await.unwrap();
    assert_eq!(token["embedOrigins"], json!(["https://fans.example"]));
    // A second token covering the name adds its sites; one without a list adds no restriction;
    // another account's list changes nothing here.
    let prefix = app
        .post_json(
            &s.client,
            "/api/v1/tokens",
            json!({ "label": "p", "streams": ["sho*"], "embedOrigins": ["http://localhost:9999"] }),
        )
        .await;
    assert_eq!(prefix.status(), 201);
    let prefix: Value = prefix.json().await.unwrap();
    let open = app.post_json(&s.client, "/api/v1/tokens", json!({ "label": "any", "streams": ["*"] })).await;
    assert_eq!(open.status(), 201);
    let other = streamer(
        &app,
        "other@example.com",
        json!({ "label": "o", "streams": ["*"], "embedOrigins": ["https://o.example"] }),
    )
    .await;
    let account = s.account.as_str();

    assert_eq!(
        frame_ancestors(&app, account, "show").await,
        "frame-ancestors 'self' https://fans.example http://localhost:9999"
    );
    assert_eq!(frame_ancestors(&app, account, "showtime").await, "frame-ancestors 'self' http://localhost:9999");
    assert_eq!(frame_ancestors(&app, account, "news").await, "frame-ancestors *");
    assert_eq!(frame_ancestors(&app, &other.account, "news").await, "frame-ancestors 'self' https://o.example");

    // Live: listed sites, this server's own pages and non-browser clients get an answer.
    let publisher = rtc::publish(&app, PublishOptions::new(&s.token, "show")).await.expect("publish accepted");
    wait_stream(&app, account, "show", "live", |state| state["live"] == true).await;
    let own_origin = app.url("").trim_end_matches('/').to_owned();
    for origin in [Some("https://fans.example"), Some("http://localhost:9999"), Some(own_origin.as_str()), None] {
        let answer = whep_from(&app, account, "show", origin).await;
        assert_eq!(answer.status(), 201, "{origin:?}");
        assert!(answer.text().await.unwrap().starts_with("v=0"));
    }
    // Pages elsewhere are refused with the reason, readable by the page (CORS).
    for origin in ["https://evil.example", "null", "https://fans.example:8443", "http://fans.example"] {
        let refused = whep_from(&app, account, "show", Some(origin)).await;
        assert_eq!(refused.status(), 403, "{origin}");
        assert_eq!(refused.headers()["access-control-allow-origin"], "*");
        assert!(refused.text().await.unwrap().contains("embedOrigins"));
    }
    // Not live, unrestricted: the usual 404.
    assert_eq!(whep_from(&app, account, "news", Some("https://evil.example")).await.status(), 404);

    // Cleared lists: anywhere again, at once.
    let cleared = patch_token(&app, &s.client, &s.token_id, json!({ "embedOrigins": null })).await;
    assert_eq!(cleared["embedOrigins"], Value::Null);
    patch_token(&app, &s.client, prefix["token"]["id"].as_str().unwrap(), json!({ "embedOrigins": [] })).await;
    assert_eq!(frame_ancestors(&app, account, "show").await, "frame-ancestors *");
    assert_eq!(whep_from(&app, account, "show", Some("https://evil.example")).await.status(), 201);
    assert!(publisher.is_connected(), "the publisher was never disturbed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_embed_origins_are_422_and_change_nothing() {
    let app = spawn_app().await;
    let s = streamer(
        &app,
        "bad-embed@example.com",
        json!({ "label": "b", "streams": ["main"], "embedOrigins": ["https://a.example"] }),
    )
    .await;
    for bad in [
        json!(["a.example"]),
        json!(["https://a.example/page"]),
        json!(["javascript:alert(1)"]),
        json!("https://a.example"),
        json!([1]),
    ] {
        let created = app
            .post_json(&s.client, "/api/v1/tokens", json!({ "label": "x", "streams": ["x"], "embedOrigins": bad }))
            .await;
        assert_eq!(created.status(), 422, "{bad}");
        let error: Value = created.json().await.unwrap();
        if bad.is_array() && bad[0].is_string() {
            assert_eq!(error["error"]["field"], "embedOrigins", "{bad}");
        }
        let patched = s
            .client
            .patch(app.url(&format!("/api/v1/tokens/{}", s.token_id)))
            .json(&json!({ "embedOrigins": bad }))
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), 422, "{bad}");
    }
    let many: Vec<String> = (0..33).map(|i| format!("https://s{i}.example")).collect();
    let created = app
        .post_json(&s.client, "/api/v1/tokens", json!({ "label": "x", "streams": ["x"], "embedOrigins": many }))
        .await;
    assert_eq!(created.status(), 422);
    assert_eq!(app.count("publish_tokens").await, 1);
    assert_eq!(frame_ancestors(&app, &s.account, "main").await, "frame-ancestors 'self' https://a.example");
    app.stop().await;
}

async fn new_subscribe_token(app: &TestApp, client: &Client, body: Value) -> (String, String) {
    let created = app.post_json(client, "/api/v1/subscribe-tokens", body).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    (created["token"]["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned())
}

/// `POST /api/v1/streams/{account}/{stream}/grants` with a bearer.
async fn exchange(app: &TestApp, account: &str, stream: &str, bearer: Option<&str>) -> Response {
    let mut request = Client::new().post(app.url(&format!("/api/v1/streams/{account}/{stream}/grants")));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_tokens_have_the_shapes_of_publish_tokens() {
    let app = spawn_app().await;
    let s = streamer(&app, "subs@example.com", json!({ "label": "p", "streams": ["main"] })).await;
    let created = app
        .post_json(
            &s.client,
            "/api/v1/subscribe-tokens",
            json!({ "label": " Members ", "streams": ["show", "vip-*", "show"], "expiresAt": "2099-01-01T00:00:00Z",
                    "allowedOrigins": ["https://Fans.example/"] }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("fcs_") && secret.len() > 40, "{secret}");
    let token = &created["token"];
    assert_eq!(token["label"], "Members");
    assert_eq!(token["streams"], json!(["show", "vip-*"]));
    assert_eq!((token["enabled"].clone(), token["expiresAt"].clone()), (json!(true), json!("2099-01-01T00:00:00Z")));
    assert_eq!(token["allowedOrigins"], json!(["https://fans.example"]));
    assert!(token["hint"].as_str().unwrap().starts_with("fcs_…"));
    let id = token["id"].as_str().unwrap();
    let url = app.url(&format!("/api/v1/subscribe-tokens/{id}"));

    let list = s.client.get(app.url("/api/v1/subscribe-tokens")).send().await.unwrap().text().await.unwrap();
    assert!(list.contains(id) && !list.contains(secret), "{list}");
    let patched: Value = s
        .client
        .patch(&url)
        .json(&json!({ "enabled": false, "allowedOrigins": null }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((patched["enabled"].clone(), patched["allowedOrigins"].clone()), (json!(false), Value::Null));
    assert_eq!(patched["label"], "Members", "absent fields stay");
    let rotated = s.client.post(format!("{url}/rotate")).send().await.unwrap();
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();
    assert_ne!(rotated["secret"], created["secret"]);

    // Bad input: 422 naming the field, nothing saved.
    for (body, field) in [
        (json!({ "label": "", "streams": ["a"] }), Some("label")),
        (json!({ "label": "x", "streams": [] }), Some("streams")),
        (json!({ "label": "x", "streams": ["no good"] }), Some("streams")),
        (json!({ "label": "x", "streams": ["a"], "expiresAt": "2001-01-01T00:00:00Z" }), Some("expiresAt")),
        (json!({ "label": "x", "streams": ["a"], "allowedOrigins": ["fans.example"] }), Some("allowedOrigins")),
        (json!({ "label": "x", "streams": ["a"], "maxViewers": 0 }), Some("maxViewers")),
        (json!({ "label": "x", "streams": ["a"], "maxViewers": -3 }), Some("maxViewers")),
        (json!({ "label": "x", "streams": ["a"], "maxViewers": 1_000_001 }), Some("maxViewers")),
        (json!({ "label": "x", "streams": ["a"], "maxViewers": "ten" }), None),
        (json!({ "label": "x", "streams": ["a"], "maxViewers": 2.5 }), None),
        (json!({ "label": "x", "streams": ["a"], "viewers": 5 }), None),
        (json!({ "label": "x" }), None),
    ] {
        let response = app.post_json(&s.client, "/api/v1/subscribe-tokens", body.clone()).await;
        assert_eq!(response.status(), 422, "{body}");
        let error: Value = response.json().await.unwrap();
        if let Some(field) = field {
            assert_eq!(error["error"]["field"], field, "{body}");
        }
    }
    assert_eq!(app.count("subscribe_tokens").await, 1);

    // Another account sees none of it.
    let other = streamer(&app, "subs-other@example.com", json!({ "label": "p", "streams": ["main"] })).await;
    assert_eq!(other.client.get(&url).send().await.unwrap().status(), 404);
    assert_eq!(other.client.delete(&url).send().await.unwrap().status(), 404);
    assert_eq!(app.client().get(app.url("/api/v1/subscribe-tokens")).send().await.unwrap().status(), 401);

    assert_eq!(s.client.delete(&url).send().await.unwrap().status(), 204);
    assert_eq!(s.client.get(&url).send().await.unwrap().status(), 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_stream_is_watched_only_with_a_viewer_token_or_its_grant() {
    let app = spawn_app().await;
    let s = streamer(
        &app,
        "secure@example.com",
        json!({ "label": "vip", "streams": ["vip", "vip2"], "secureViewer": true }),
    )
    .await;
    let open_token = app.post_json(&s.client, "/api/v1/tokens", json!({ "label": "open", "streams": ["open"] })).await;
    let open_token: Value = open_token.json().await.unwrap();
    let account = s.account.as_str();
    let (vip_id, vip) = new_subscribe_token(&app, &s.client, json!({ "label": "members", "streams": ["vip"] })).await;
    let (_, elsewhere) = new_subscribe_token(&app, &s.client, json!({ "label": "other", "streams": ["vip2"] })).await;
    let (_, fans_only) = new_subscribe_token(
        &app,
        &s.client,
        json!({ "label": "fans", "streams": ["vip"], "allowedOrigins": ["https://fans.example"] }),
    )
    .await;
    let (expired_id, expired) = new_subscribe_token(&app, &s.client, json!({ "label": "old", "streams": ["*"] })).await;
    let pool = ferrocast::db::open(&app.data_dir).await.unwrap();
    sqlx::query("UPDATE subscribe_tokens SET expires_at = 1 WHERE id = ?")
        .bind(&expired_id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let stranger = streamer(&app, "stranger@example.com", json!({ "label": "s", "streams": ["*"] })).await;
    let (_, strangers) =
        new_subscribe_token(&app, &stranger.client, json!({ "label": "theirs", "streams": ["*"] })).await;

    // The viewer page knows before anyone connects.
    let page = |stream: &'static str| app.client().get(app.url(&format!("/watch/{account}/{stream}"))).send();
    assert!(page("vip").await.unwrap().text().await.unwrap().contains(r#"data-secure="true""#));
    assert!(page("open").await.unwrap().text().await.unwrap().contains(r#"data-secure="false""#));

    let publisher = rtc::publish(&app, PublishOptions::new(&s.token, "vip")).await.expect("publish accepted");
    wait_stream(&app, account, "vip", "live", |state| state["live"] == true).await;

    let refused = whep(&app, account, "vip", None, None).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    assert_eq!(refused.headers()["access-control-allow-origin"], "*");
    assert!(refused.text().await.unwrap().contains("viewer token"));
    let publish_secret = s.token.clone();
    let fans_origin = Some("https://fans.example");
    for (what, origin, bearer, status) in [
        ("a made-up token", None, "fcs_0000", 401),
        ("a publish token", None, publish_secret.as_str(), 401),
        ("a token for another stream", None, elsewhere.as_str(), 403),
        ("an expired token", None, expired.as_str(), 403),
        ("another account's token", None, strangers.as_str(), 403),
        ("a token from a site it does not list", Some("https://evil.example"), fans_only.as_str(), 403),
        ("a forged grant", None, "fcv_dmlwL3ZpcC94LzE.AAAA", 401),
        ("the token", None, vip.as_str(), 201),
        ("a token from the site it lists", fans_origin, fans_only.as_str(), 201),
        ("a listed-site token, not from a page", None, fans_only.as_str(), 201),
    ] {
        let response = whep(&app, account, "vip", origin, Some(bearer)).await;
        assert_eq!(response.status(), status, "{what}");
    }

    // The exchange: a grant for this stream that WHEP takes, refused for the other one.
    assert_eq!(exchange(&app, account, "vip", None).await.status(), 401);
    assert_eq!(exchange(&app, account, "vip", Some("fcs_0000")).await.status(), 401);
    assert_eq!(exchange(&app, account, "vip2", Some(&vip)).await.status(), 403);
    let granted = exchange(&app, account, "vip", Some(&vip)).await;
    assert_eq!(granted.status(), 201);
    let granted: Value = granted.json().await.unwrap();
    let grant = granted["grant"].as_str().unwrap().to_owned();
    assert!(grant.starts_with("fcv_") && !grant.contains(&vip), "{grant}");
    assert!((590..=600).contains(&granted["expiresIn"].as_u64().unwrap()), "{granted}");
    assert_eq!(whep(&app, account, "vip", None, Some(&grant)).await.status(), 201);
    assert_eq!(whep(&app, account, "vip2", None, Some(&grant)).await.status(), 403, "a grant names its stream");
    let renewed = exchange(&app, account, "vip", Some(&grant)).await;
    assert_eq!(renewed.status(), 201, "a grant renews itself");
    let mut tampered = grant.clone();
    tampered.replace_range(6..7, if &grant[6..7] == "A" { "B" } else { "A" });
    assert_eq!(whep(&app, account, "vip", None, Some(&tampered)).await.status(), 401);

    // The token behind a grant still rules it: disabled → 403, deleted → 401.
    let token_url = app.url(&format!("/api/v1/subscribe-tokens/{vip_id}"));
    let disabled = s.client.patch(&token_url).json(&json!({ "enabled": false })).send().await.unwrap();
    assert_eq!(disabled.status(), 200);
    assert_eq!(whep(&app, account, "vip", None, Some(&grant)).await.status(), 403);
    assert_eq!(whep(&app, account, "vip", None, Some(&vip)).await.status(), 403);
    assert_eq!(s.client.delete(&token_url).send().await.unwrap().status(), 204);
    assert_eq!(whep(&app, account, "vip", None, Some(&grant)).await.status(), 401);

    // A stream without the flag needs nothing; turning the flag off opens the secure one.
    assert_eq!(whep(&app, account, "open", None, None).await.status(), 404, "not live, but not refused");
    let patched = s
        .client
        .patch(app.url(&format!("/api/v1/tokens/{}", s.token_id)))
        .json(&json!({ "secureViewer": false }))
        .send()
        .await
        .unwrap();
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["secureViewer"], false);
    assert_eq!(open_token["token"]["secureViewer"], false);
    assert_eq!(whep(&app, account, "vip", None, None).await.status(), 201);
    assert!(publisher.is_connected(), "the publisher was never disturbed");
    app.stop().await;
}

/// The session URL of an answered WHEP offer.
fn session_url(app: &TestApp, answered: &Response) -> String {
    app.url(answered.headers()[header::LOCATION].to_str().unwrap())
}

async fn refused_busy(response: Response, says: &str) {
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    let body = response.text().await.unwrap();
    assert!(body.contains(says), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_token_lets_in_at_most_its_max_viewers_on_all_its_streams() {
    let app = spawn_app().await;
    let s =
        streamer(&app, "caps@example.com", json!({ "label": "vip", "streams": ["vip", "vip2"], "secureViewer": true }))
            .await;
    let account = s.account.as_str();
    let (capped_id, capped) =
        new_subscribe_token(&app, &s.client, json!({ "label": "Pair", "streams": ["vip*"], "maxViewers": 2 })).await;
    let (open_id, uncapped) = new_subscribe_token(&app, &s.client, json!({ "label": "All", "streams": ["vip"] })).await;
    let token_url = app.url(&format!("/api/v1/subscribe-tokens/{capped_id}"));
    let shown: Value = s.client.get(&token_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(shown["maxViewers"], 2);
    let publisher = rtc::publish(&app, PublishOptions::new(&s.token, "vip")).await.expect("publish vip");
    let publisher2 = rtc::publish(&app, PublishOptions::new(&s.token, "vip2")).await.expect("publish vip2");
    wait_stream(&app, account, "vip", "live", |state| state["live"] == true).await;
    wait_stream(&app, account, "vip2", "live", |state| state["live"] == true).await;

    // Answered offers count at once (a viewer still connecting holds its place), on every
    // stream the token covers, whether it came with the token or a grant made from it.
    let first = whep(&app, account, "vip", None, Some(&capped)).await;
    assert_eq!(first.status(), 201);
    let grant: Value = exchange(&app, account, "vip2", Some(&capped)).await.json().await.unwrap();
    let second = whep(&app, account, "vip2", None, grant["grant"].as_str()).await;
    assert_eq!(second.status(), 201);
    refused_busy(whep(&app, account, "vip", None, Some(&capped)).await, "allows 2 viewers at once").await;
    refused_busy(whep(&app, account, "vip2", None, grant["grant"].as_str()).await, "viewer token").await;
    assert_eq!(whep(&app, account, "vip", None, Some(&uncapped)).await.status(), 201, "other tokens are not held");

    // A viewer who leaves frees a place; a raised cap lets more in; no cap lets anyone in.
    let left = Client::new().delete(session_url(&app, &first)).send().await.unwrap();
    assert_eq!(left.status(), 200);
    assert_eq!(whep(&app, account, "vip", None, Some(&capped)).await.status(), 201);
    refused_busy(whep(&app, account, "vip", None, Some(&capped)).await, "allows 2").await;
    let raised = s.client.patch(&token_url).json(&json!({ "maxViewers": 3 })).send().await.unwrap();
    assert_eq!(raised.status(), 200);
    assert_eq!(whep(&app, account, "vip", None, Some(&capped)).await.status(), 201);
    refused_busy(whep(&app, account, "vip", None, Some(&capped)).await, "allows 3").await;
    let bad = s.client.patch(&token_url).json(&json!({ "maxViewers": 0 })).send().await.unwrap();
    assert_eq!(bad.status(), 422);
    let lifted: Value =
        s.client.patch(&token_url).json(&json!({ "maxViewers": null })).send().await.unwrap().json().await.unwrap();
    assert_eq!(lifted["maxViewers"], Value::Null);
    assert_eq!(whep(&app, account, "vip", None, Some(&capped)).await.status(), 201);

    // Connected viewers are counted by token for the owner (API and Live page).
    let viewer = rtc::view_with(&app, &format!("/whep/{account}/vip"), 1, Some(&uncapped)).await.expect("viewer");
    viewer.wait_for("connected", rtc::Viewer::is_connected).await;
    let by_pass = wait_for_pass_count(&app, &s.client, "vip", &open_id).await;
    assert_eq!(by_pass["kind"], "subscribeToken");
    assert_eq!(by_pass["viewers"], 1);
    let live = s.client.get(app.url("/live")).send().await.unwrap().text().await.unwrap();
    assert!(live.contains("Viewer token All"), "the Live page names the token");
    assert!(publisher.is_connected() && publisher2.is_connected(), "publishers were never disturbed");
    app.stop().await;
}

/// The owner's `viewersByPass` entry of `id` on `stream`, once a connected viewer shows there.
async fn wait_for_pass_count(app: &TestApp, client: &Client, stream: &str, id: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let streams: Value = client.get(app.url("/api/v1/streams")).send().await.unwrap().json().await.unwrap();
        let entry = streams
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["streamName"] == stream)
            .flat_map(|s| s["viewersByPass"].as_array().cloned().unwrap_or_default())
            .find(|p| p["id"] == id);
        if let Some(entry) = entry {
            return entry;
        }
        assert!(std::time::Instant::now() < deadline, "no viewers by pass for {id}: {streams}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_link_opens_one_private_stream_for_its_viewers_until_it_expires() {
    let app = spawn_app().await;
    let s = streamer(
        &app,
        "links@example.com",
        json!({ "label": "show", "streams": ["show", "show2"], "secureViewer": true }),
    )
    .await;
    let open = app.post_json(&s.client, "/api/v1/tokens", json!({ "label": "open", "streams": ["open"] })).await;
    assert_eq!(open.status(), 201);
    let account = s.account.as_str();
    let link = |stream: &str, body: Value| {
        s.client.post(app.url(&format!("/api/v1/streams/{stream}/links"))).json(&body).send()
    };

    // Bad input: a clear 4xx, nothing made.
    for (stream, body, status, field) in [
        ("show", json!({ "expiresIn": 59 }), 422, Some("expiresIn")),
        ("show", json!({ "expiresIn": 2_592_001 }), 422, Some("expiresIn")),
        ("show", json!({ "expiresIn": 600, "maxViewers": 0 }), 422, Some("maxViewers")),
        ("show", json!({ "expiresIn": -5 }), 422, None),
        ("show", json!({ "expiresIn": "soon" }), 422, None),
        ("show", json!({}), 422, None),
        ("show", json!({ "expiresIn": 600, "viewers": 3 }), 422, None),
        ("no%20good", json!({ "expiresIn": 600 }), 422, Some("streamName")),
        ("open", json!({ "expiresIn": 600 }), 409, None),
        ("nobody-covers", json!({ "expiresIn": 600 }), 409, None),
    ] {
        let response = link(stream, body.clone()).await.unwrap();
        assert_eq!(response.status(), status, "{stream} {body}");
        let error: Value = response.json().await.unwrap();
        if let Some(field) = field {
            assert_eq!(error["error"]["field"], field, "{body}");
        }
    }
    let anonymous = Client::new().post(app.url("/api/v1/streams/show/links")).json(&json!({ "expiresIn": 600 }));
    assert_eq!(anonymous.send().await.unwrap().status(), 401);

    let made = link("show", json!({ "expiresIn": 3600, "maxViewers": 1 })).await.unwrap();
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.unwrap();
    let grant = made["grant"].as_str().unwrap().to_owned();
    assert!(grant.starts_with("fcv_"), "{made}");
    assert_eq!(made["url"], app.url(&format!("/watch/{account}/show?grant={grant}")));
    assert_eq!(made["maxViewers"], 1);
    let expires = time::OffsetDateTime::parse(
        made["expiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    assert!((expires - ferrocast::db::now_unix() - 3600).abs() <= 5, "{made}");

    let publisher = rtc::publish(&app, PublishOptions::new(&s.token, "show")).await.expect("publish");
    wait_stream(&app, account, "show", "live", |state| state["live"] == true).await;
    assert_eq!(whep(&app, account, "show", None, None).await.status(), 401, "still private without the link");
    let first = whep(&app, account, "show", None, Some(&grant)).await;
    assert_eq!(first.status(), 201);
    refused_busy(whep(&app, account, "show", None, Some(&grant)).await, "viewer link allows 1").await;
    assert_eq!(whep(&app, account, "show2", None, Some(&grant)).await.status(), 403, "one stream only");
    // Another link to the same stream has places of its own.
    let other: Value = link("show", json!({ "expiresIn": 60 })).await.unwrap().json().await.unwrap();
    assert_eq!(whep(&app, account, "show", None, other["grant"].as_str()).await.status(), 201);

    // /watch trades what it was given: a link comes back as it is, with the time it has left.
    let traded = exchange(&app, account, "show", Some(&grant)).await;
    assert_eq!(traded.status(), 201);
    let traded: Value = traded.json().await.unwrap();
    assert_eq!(traded["grant"], grant);
    assert!((3590..=3600).contains(&traded["expiresIn"].as_u64().unwrap()), "{traded}");

    // An expired link says so (signed with the server's key, as a link made an hour ago).
    let pool = ferrocast::db::open(&app.data_dir).await.unwrap();
    let claims = ferrocast::server::viewer_access::grants::GrantClaims {
        account: account.to_owned(),
        stream: "show".into(),
        basis: ferrocast::server::viewer_access::grants::GrantBasis::Link { id: "0ld".into(), max_viewers: None },
        expires_at: ferrocast::db::now_unix() - 1,
    };
    let expired = ferrocast::server::viewer_access::grants::ViewerGrants::default().mint(&pool, &claims).await.unwrap();
    pool.close().await;
    let refused = whep(&app, account, "show", None, Some(&expired)).await;
    assert_eq!(refused.status(), 401);
    assert!(refused.text().await.unwrap().contains("viewer link has expired"));

    // The link's route does not hide a stream called "links".
    let links_stream = app.client().get(app.url(&format!("/api/v1/streams/{account}/links"))).send().await.unwrap();
    assert_eq!(links_stream.status(), 200);
    let links_stream: Value = links_stream.json().await.unwrap();
    assert_eq!((links_stream["streamName"].clone(), links_stream["live"].clone()), (json!("links"), json!(false)));
    let events = app.client().get(app.url(&format!("/api/v1/streams/{account}/links/events"))).send().await.unwrap();
    assert_eq!(events.status(), 200);
    assert!(publisher.is_connected());
    drop(first);
    app.stop().await;
}
