//! Server-rendered pages: who may see them, their status codes and headers, and the forms that
//! work without JavaScript.

use reqwest::{header, Response};
use serde_json::json;

use crate::helpers::*;

fn location(response: &Response) -> &str {
    response.headers()[header::LOCATION].to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitors_are_sent_to_login_and_members_to_the_dashboard() {
    let app = spawn_app().await;
    let visitor = app.client();
    let response = visitor.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/login");
    let response = visitor.get(app.url("/tokens")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/login?next=%2Ftokens");
    let response = visitor.get(app.url("/live?x=1")).send().await.unwrap();
    assert_eq!(location(&response), "/login?next=%2Flive%3Fx%3D1");

    let member = app.client();
    app.sign_up(&member, "member@example.com").await;
    for (path, to) in [("/", "/tokens"), ("/login", "/tokens"), ("/signup", "/tokens")] {
        let response = member.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(location(&response), to, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_renders_on_the_server_for_its_account() {
    let app = spawn_app().await;
    let member = app.client();
    let me = app.sign_up(&member, "render@example.com").await;
    for (path, heading) in [("/tokens", "Publish tokens"), ("/live", "Live streams")] {
        let response = member.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY", "the dashboard cannot be framed");
        let html = response.text().await.unwrap();
        assert!(html.contains(heading), "{path}");
        assert!(html.contains("render@example.com"), "the account menu names the account");
        assert!(html.contains(me["accountId"].as_str().unwrap()));
        assert!(html.contains("/pkg/ferrocast.js"), "the page loads the wasm bundle");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_signup_pages_hold_labelled_forms() {
    let app = spawn_app().await;
    for path in ["/login", "/signup"] {
        let response = app.client().get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
        let html = response.text().await.unwrap();
        assert!(html.contains(r#"<label for="email""#), "{path}");
        assert!(html.contains(r#"<label for="password""#), "{path}");
        assert!(html.contains(r#"action="/rpc/"#), "{path}: the form posts to its server function");
    }
    let html = app.client().get(app.url("/login?next=/live")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(r#"name="next" value="/live""#), "where to go after login survives a plain form post");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_pages_are_404() {
    let app = spawn_app().await;
    let response = app.client().get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("Page not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_files_are_served_from_the_site_root() {
    let site = tempfile::TempDir::new().unwrap();
    std::fs::write(site.path().join("favicon.ico"), b"icon").unwrap();
    let root = site.path().to_path_buf();
    let app = spawn_app_with(|c| c.site_root = root).await;
    let response = app.client().get(app.url("/favicon.ico")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"icon");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_form_works_without_javascript() {
    let app = spawn_app().await;
    app.sign_up(&app.client(), "nojs@example.com").await;
    let browser = app.client();
    let form = |password: &str| {
        browser
            .post(app.url("/rpc/login"))
            .header(header::ACCEPT, "text/html")
            .header(header::REFERER, app.url("/login"))
            .form(&[("email", "nojs@example.com"), ("password", password), ("next", "/live")])
            .send()
    };

    let response = form("wrong password").await.unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    let back = location(&response).to_owned();
    assert!(back.starts_with("/login?next=%2Flive&error="), "{back}");
    let html = browser.get(app.url(&back)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("email or password is incorrect"), "the login page shows the error");

    let response = form(PASSWORD).await.unwrap();
    assert!(response.status().is_redirection());
    assert_eq!(location(&response), "/live", "goes where the visitor wanted to go");
    assert!(response.headers()[header::SET_COOKIE].to_str().unwrap().contains("HttpOnly"));
    assert_eq!(browser.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_never_redirects_to_another_site() {
    let app = spawn_app().await;
    app.sign_up(&app.client(), "redir@example.com").await;
    // Browsers drop tabs and newlines from a Location and read a backslash as a slash: each of
    // these would leave the site, and a newline cannot even be put in a header.
    for next in
        ["//evil.example/", "/\t/evil.example", "/\n/evil.example", "/\\evil.example", "/\r", "https://evil.example"]
    {
        let response = app
            .client()
            .post(app.url("/rpc/login"))
            .header(header::ACCEPT, "text/html")
            .form(&[("email", "redir@example.com"), ("password", PASSWORD), ("next", next)])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_redirection(), "{next:?}: {}", response.status());
        assert_eq!(location(&response), "/tokens", "{next:?}");
    }
    // A path of this site with a query still works.
    let response = app
        .client()
        .post(app.url("/rpc/login"))
        .header(header::ACCEPT, "text/html")
        .form(&[("email", "redir@example.com"), ("password", PASSWORD), ("next", "/live?x=1")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/live?x=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_up_through_the_page_logs_in() {
    let app = spawn_app().await;
    let browser = app.client();
    let response = browser
        .post(app.url("/rpc/signup"))
        .header(header::ACCEPT, "text/html")
        .form(&[("email", "page@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection());
    assert_eq!(location(&response), "/tokens");
    let me: serde_json::Value = browser.get(app.url("/api/v1/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["email"], json!("page@example.com"));

    let response = browser
        .post(app.url("/rpc/signup"))
        .header(header::ACCEPT, "text/html")
        .form(&[("email", "page@example.com"), ("password", "short")])
        .send()
        .await
        .unwrap();
    assert!(location(&response).starts_with("/signup?error="), "errors go back to the form");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_settings_form_works_as_a_plain_form_post() {
    let app = spawn_app().await;
    let browser = app.client();
    app.sign_up(&browser, "form@example.com").await;
    let created: serde_json::Value = app
        .post_json(&browser, "/api/v1/tokens", json!({ "label": "before", "streams": ["old"], "record": true }))
        .await
        .json()
        .await
        .unwrap();
    let id = created["token"]["id"].as_str().unwrap();

    // What a browser without JavaScript sends: brackets percent-encoded, unchecked boxes absent.
    let response = browser
        .post(app.url("/rpc/save_token"))
        .header(header::ACCEPT, "text/html")
        .header(header::REFERER, app.url(&format!("/tokens/{id}")))
        .form(&[
            ("id", id),
            ("form[label]", "after"),
            ("form[streams][0]", "main"),
            ("form[streams][1]", ""),
            ("form[streams][2]", "cam-*"),
            ("form[enabled]", "on"),
            ("form[expires_utc]", "2099-05-01T12:30"),
            ("form[allowed_origins]", "https://a.example\r\nhttps://b.example/"),
            ("form[embed_origins]", "https://fans.example\r\n"),
        ])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    let token: serde_json::Value =
        browser.get(app.url(&format!("/api/v1/tokens/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(token["label"], "after");
    assert_eq!(token["streams"], json!(["main", "cam-*"]));
    assert_eq!(token["enabled"], true);
    assert_eq!(token["record"], false, "an unchecked box turns the flag off");
    assert_eq!(token["expiresAt"], "2099-05-01T12:30:00Z");
    assert_eq!(token["allowedOrigins"], json!(["https://a.example", "https://b.example"]));
    assert_eq!(token["embedOrigins"], json!(["https://fans.example"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_server_functions_need_an_account() {
    let app = spawn_app().await;
    for path in ["/rpc/tokens", "/rpc/api_keys", "/rpc/delete_token"] {
        let response = app.client().post(app.url(path)).form(&[("id", "x")]).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_run_only_the_scripts_they_name() {
    let app = spawn_app().await;
    let client = app.client();
    app.sign_up(&client, "csp@example.com").await;
    for path in ["/tokens", "/live", "/account", "/login", "/no-such-page"] {
        let client = if path == "/login" { app.client() } else { client.clone() };
        let response = client.get(app.url(path)).send().await.unwrap();
        let policy = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
        let nonce = policy
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("{path}: no script nonce in {policy}"))
            .to_owned();
        assert!(policy.contains("'strict-dynamic'") && policy.contains("object-src 'none'"), "{path}: {policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{path}: {policy}");
        let html = response.text().await.unwrap();
        let scripts: Vec<&str> = html.split("<script").skip(1).map(|s| s.split('>').next().unwrap()).collect();
        assert!(!scripts.is_empty(), "{path}: the page hydrates with scripts");
        for script in scripts {
            assert!(
                script.contains(&format!("nonce=\"{nonce}\"")),
                "{path}: a script without the nonce: <script{script}>"
            );
        }
    }
    // Another response, another nonce.
    let policy = |r: &Response| r.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    let first = client.get(app.url("/tokens")).send().await.unwrap();
    let second = client.get(app.url("/tokens")).send().await.unwrap();
    assert_ne!(policy(&first), policy(&second));

    // The embeddable player: its own scripts, framed anywhere.
    let watch = app.client().get(app.url("/watch/abcdef/show")).send().await.unwrap();
    let policy = policy(&watch);
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors *"), "{policy}");
    app.stop().await;
}
