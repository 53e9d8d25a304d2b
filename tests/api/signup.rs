//! Who may sign up (`--signup invite|open|closed`), the operator's invites, and the command
//! line's `invite` and `reset-password` (README "Sign-up and the operator").

use std::{
    io::Write,
    process::{Command, Stdio},
};

use ferrocast::config::SignupMode;
use reqwest::Client;
use serde_json::{json, Value};

use crate::helpers::{browser_like, error_code, spawn_app_with, TestApp, PASSWORD};

fn invite_only(config: &mut ferrocast::config::Config) {
    config.signup = SignupMode::Invite;
}

async fn sign_up(app: &TestApp, client: &Client, email: &str, invite: Option<&str>) -> reqwest::Response {
    let mut body = json!({ "email": email, "password": PASSWORD });
    if let Some(code) = invite {
        body["invite"] = json!(code);
    }
    app.post_json(client, "/api/v1/signup", body).await
}

/// An error's message (after checking its status and code).
async fn refusal(response: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(response.status(), status, "status of {}", response.url());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}

async fn make_invite(app: &TestApp, operator: &Client, body: Value) -> Value {
    let made = app.post_json(operator, "/api/v1/invites", body).await;
    assert_eq!(made.status(), 201);
    made.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_account_runs_the_instance_and_the_next_need_its_invites() {
    let app = spawn_app_with(invite_only).await;
    let (operator, bob, carol) = (app.client(), app.client(), app.client());
    // Before anyone exists, the operator's doors look like any unknown route.
    assert_eq!(error_code(operator.get(app.url("/api/v1/invites")).send().await.unwrap(), 404).await, "not_found");

    let first = sign_up(&app, &operator, "owner@example.com", None).await;
    assert_eq!(first.status(), 201);
    assert_eq!(first.json::<Value>().await.unwrap()["operator"], true);
    let me: Value = operator.get(app.url("/api/v1/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["operator"], true);

    // The second sign-up needs an invite, and is told whom to ask; nothing is written.
    let message = refusal(sign_up(&app, &bob, "bob@example.com", None).await, 403, "invite_required").await;
    assert!(message.contains("invite") && message.contains("operator"), "{message}");
    assert_eq!(app.count("accounts").await, 1);

    let made = make_invite(&app, &operator, json!({ "note": "for Bob", "expiresIn": 3600 })).await;
    let code = made["code"].as_str().unwrap();
    assert!(code.starts_with("fci_") && code.len() == 4 + 64, "{code}");
    assert_eq!(made["url"], format!("{}/signup?invite={code}", app.base));
    assert!(made["expiresAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!((made["invite"]["note"].as_str(), made["invite"]["state"].as_str()), (Some("for Bob"), Some("open")));
    // Stored hashed: the code is nowhere in the database.
    let pool = ferrocast::db::open(&app.data_dir).await.unwrap();
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT code_hash || hint || id FROM invites").fetch_all(&pool).await.unwrap();
    assert!(stored.iter().all(|row| !row.contains(&code[4..])));

    let bob_joined = sign_up(&app, &bob, "bob@example.com", Some(code)).await;
    assert_eq!(bob_joined.status(), 201);
    assert_eq!(bob_joined.json::<Value>().await.unwrap()["operator"], false);
    // One use only.
    let message = refusal(sign_up(&app, &carol, "carol@example.com", Some(code)).await, 403, "invite_invalid").await;
    assert!(message.contains("used"), "{message}");

    // The list shows who used it, never the code.
    let list = operator.get(app.url("/api/v1/invites")).send().await.unwrap();
    assert_eq!(list.status(), 200);
    let text = list.text().await.unwrap();
    assert!(!text.contains(code));
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list[0]["state"], "used");
    assert_eq!(list[0]["usedBy"], "bob@example.com");
    assert_eq!(list[0]["hint"], format!("fci_…{}", &code[code.len() - 4..]));

    // Everyone but the operator gets 404 from every operator door, and from /admin.
    for (method, path) in [("GET", "/api/v1/invites"), ("POST", "/api/v1/invites"), ("DELETE", "/api/v1/invites/x")] {
        let request = bob.request(method.parse().unwrap(), app.url(path)).json(&json!({}));
        assert_eq!(request.send().await.unwrap().status(), 404, "{method} {path} for a non-operator");
    }
    let anonymous = app.client();
    assert_eq!(anonymous.get(app.url("/admin")).send().await.unwrap().status(), 404);
    let bob_admin = bob.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(bob_admin.status(), 404);
    assert!(bob_admin.text().await.unwrap().contains("Page not found"));
    let admin = operator.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(admin.status(), 200);
    let page = admin.text().await.unwrap();
    assert!(page.contains("Invites") && page.contains("for Bob") && page.contains("bob@example.com"), "{page}");
    assert!(!page.contains(code));

    // Expired: refused with the reason, shown as expired.
    let old = make_invite(&app, &operator, json!({})).await;
    let old_code = old["code"].as_str().unwrap();
    let seven_days = chrono_like_seconds(old["expiresAt"].as_str().unwrap())
        - chrono_like_seconds(old["invite"]["createdAt"].as_str().unwrap());
    assert_eq!(seven_days, 7 * 24 * 3600, "the default lifetime is a week");
    sqlx::query("UPDATE invites SET expires_at = created_at - 1 WHERE id = $1")
        .bind(old["invite"]["id"].as_str().unwrap())
        .execute(&pool)
        .await
        .unwrap();
    let message =
        refusal(sign_up(&app, &carol, "carol@example.com", Some(old_code)).await, 403, "invite_invalid").await;
    assert!(message.contains("expired"), "{message}");
    let list: Value = operator.get(app.url("/api/v1/invites")).send().await.unwrap().json().await.unwrap();
    assert!(list.as_array().unwrap().iter().any(|i| i["id"] == old["invite"]["id"] && i["state"] == "expired"));

    // Withdrawn, by code or by id: unknown after that.
    let withdrawn = make_invite(&app, &operator, json!({})).await;
    let withdrawn_code = withdrawn["code"].as_str().unwrap();
    let delete = |key: &str| operator.delete(app.url(&format!("/api/v1/invites/{key}"))).send();
    assert_eq!(delete(withdrawn_code).await.unwrap().status(), 204);
    assert_eq!(error_code(delete(withdrawn_code).await.unwrap(), 404).await, "not_found");
    let message =
        refusal(sign_up(&app, &carol, "carol@example.com", Some(withdrawn_code)).await, 403, "invite_invalid").await;
    assert!(message.contains("not known"), "{message}");
    let by_id = make_invite(&app, &operator, json!({})).await;
    assert_eq!(delete(by_id["invite"]["id"].as_str().unwrap()).await.unwrap().status(), 204);

    // Bad input: 4xx with the field named, nothing made.
    let before = app.count("invites").await;
    for (body, field) in [
        (json!({ "expiresIn": 0 }), "expiresIn"),
        (json!({ "expiresIn": 59 }), "expiresIn"),
        (json!({ "expiresIn": 31 * 24 * 3600 }), "expiresIn"),
        (json!({ "note": "x".repeat(201) }), "note"),
        (json!({ "note": "two\nlines" }), "note"),
    ] {
        let response = app.post_json(&operator, "/api/v1/invites", body.clone()).await;
        assert_eq!(response.status(), 422, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["message"].as_str().unwrap().starts_with(field), "{body}: {error}");
    }
    for body in [json!({ "expiresIn": "soon" }), json!({ "expiresIn": -5 }), json!({ "colour": "red" })] {
        let status = app.post_json(&operator, "/api/v1/invites", body.clone()).await.status().as_u16();
        assert!(status == 400 || status == 422, "{body}: {status}");
    }
    let malformed = operator.post(app.url("/api/v1/invites")).header("content-type", "application/json").body("{");
    assert_eq!(malformed.send().await.unwrap().status(), 400);
    assert_eq!(app.count("invites").await, before);
    // A made-up code is refused like a withdrawn one; an empty one like none.
    refusal(sign_up(&app, &carol, "carol@example.com", Some("fci_nope")).await, 403, "invite_invalid").await;
    refusal(sign_up(&app, &carol, "carol@example.com", Some("  ")).await, 403, "invite_required").await;
    assert_eq!(app.count("accounts").await, 2);
    pool.close().await;
}

/// Seconds since the epoch of an RFC 3339 UTC time as the API writes it.
fn chrono_like_seconds(text: &str) -> i64 {
    ferrocast::server::timestamps::from_rfc3339(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_first_sign_ups_at_once_make_one_operator() {
    for _ in 0..5 {
        let app = spawn_app_with(invite_only).await;
        let (a, b) = (app.client(), app.client());
        let (first, second) =
            tokio::join!(sign_up(&app, &a, "a@example.com", None), sign_up(&app, &b, "b@example.com", None));
        let mut statuses = [first.status().as_u16(), second.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 403]);
        assert_eq!(app.count("accounts").await, 1);
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_lets_anyone_in_and_closed_nobody() {
    let open = spawn_app_with(|c| c.signup = SignupMode::Open).await;
    let first = sign_up(&open, &open.client(), "one@example.com", None).await;
    assert_eq!(first.json::<Value>().await.unwrap()["operator"], true, "an open instance has an operator too");
    let second = sign_up(&open, &open.client(), "two@example.com", None).await;
    assert_eq!(
        (second.status().as_u16(), second.json::<Value>().await.unwrap()["operator"].clone()),
        (201, json!(false))
    );

    let closed = spawn_app_with(|c| c.signup = SignupMode::Closed).await;
    refusal(sign_up(&closed, &closed.client(), "one@example.com", None).await, 403, "signup_closed").await;
    // Not even with a code (invites are for `invite` mode).
    refusal(sign_up(&closed, &closed.client(), "one@example.com", Some("fci_x")).await, 403, "signup_closed").await;
    assert_eq!(closed.count("accounts").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signup_page_says_who_may_join_and_carries_the_invite() {
    let app = spawn_app_with(invite_only).await;
    let app_ref = &app;
    let page = move |path: &'static str| async move {
        app_ref.client().get(app_ref.url(path)).send().await.unwrap().text().await.unwrap()
    };
    assert!(page("/signup").await.contains("the account you create now runs it"));
    let operator = app.client();
    assert_eq!(sign_up(&app, &operator, "owner@example.com", None).await.status(), 201);
    assert!(page("/signup").await.contains("ask its operator for an invite link"));
    let code = make_invite(&app, &operator, json!({})).await["code"].as_str().unwrap().to_owned();
    let invited =
        app.client().get(app.url(&format!("/signup?invite={code}"))).send().await.unwrap().text().await.unwrap();
    assert!(invited.contains("You were invited"));
    assert!(invited.contains(&format!(r#"name="invite" value="{code}""#)), "the form carries the code");

    // The form, posted as a browser without JavaScript does: in with the invite, and a refusal
    // comes back to the page with the code still in the address.
    let browser = browser_like(Client::builder());
    let form = [("email", "dana@example.com"), ("password", PASSWORD), ("invite", code.as_str())];
    let joined = browser.post(app.url("/rpc/signup")).header("accept", "text/html").form(&form).send().await.unwrap();
    assert!(joined.status().is_redirection(), "{}", joined.status());
    assert_eq!(joined.headers()["location"], "/tokens");
    let again = browser_like(Client::builder());
    let form = [("email", "eve@example.com"), ("password", PASSWORD), ("invite", code.as_str())];
    let refused = again.post(app.url("/rpc/signup")).header("accept", "text/html").form(&form).send().await.unwrap();
    assert!(refused.status().is_redirection(), "{}", refused.status());
    let location = refused.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("/signup?invite={code}&error=")), "{location}");
}

fn ferrocast(args: &[&str], data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferrocast"));
    command.args(args).arg("--data-dir").arg(data_dir).env("RUST_LOG", "warn");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_invites_and_resets_passwords_while_the_server_runs() {
    let app = spawn_app_with(invite_only).await;
    let operator = app.client();
    assert_eq!(sign_up(&app, &operator, "owner@example.com", None).await.status(), 201);

    let out =
        ferrocast(&["invite", "--note", "from the shell", "--public-url", "https://live.example.com"], &app.data_dir)
            .output()
            .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let url = stdout.lines().find(|l| l.starts_with("https://live.example.com/signup?invite=")).expect(&stdout);
    let code = url.rsplit_once("invite=").unwrap().1;
    let bob = app.client();
    assert_eq!(sign_up(&app, &bob, "bob@example.com", Some(code)).await.status(), 201);
    let list: Value = operator.get(app.url("/api/v1/invites")).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (list[0]["note"].as_str(), list[0]["usedBy"].as_str()),
        (Some("from the shell"), Some("bob@example.com"))
    );
    // Bad input: a lifetime out of range is refused, nothing made.
    let out = ferrocast(&["invite", "--expires-in", "5"], &app.data_dir).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expiresIn"));

    // reset-password: the new password from standard input; Bob's session ends.
    let reset = |email: &str, input: &str| {
        let mut child = ferrocast(&["reset-password", email], &app.data_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = reset("Bob@Example.com", "a brand new passphrase\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("bob@example.com"));
    assert_eq!(bob.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401, "the old session ended");
    let app_ref = &app;
    let login = move |password: &'static str| async move {
        let body = json!({ "email": "bob@example.com", "password": password });
        app_ref.post_json(&app_ref.client(), "/api/v1/login", body).await
    };
    assert_eq!(login(PASSWORD).await.status(), 401);
    assert_eq!(login("a brand new passphrase").await.status(), 200);
    // Bad input: unknown email, short password; nothing changes.
    let out = reset("nobody@example.com", "another long one\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no account"));
    let out = reset("bob@example.com", "short\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 8"));
    assert_eq!(login("a brand new passphrase").await.status(), 200);
}

#[test]
fn the_binary_tells_its_version_and_a_first_run_what_to_do() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrocast")).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), format!("ferrocast {}", env!("CARGO_PKG_VERSION")));

    let data = tempfile::TempDir::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrocast"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let first = lines.next().unwrap().unwrap();
    let base = first.strip_prefix("ferrocast listening on ").expect(&first).to_owned();
    assert_eq!(lines.next().unwrap().unwrap(), format!("Open {base} in a browser."));
    let operator_line = lines.next().unwrap().unwrap();
    assert_eq!(
        operator_line,
        format!("No account yet: the first account made at {base}/signup becomes this server's operator.")
    );
    // The binary's defaults are invite-only: the first sign-up is the operator, the second needs an
    // invite.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = Client::builder().timeout(std::time::Duration::from_secs(30)).build().unwrap();
        let signup = |email: &'static str| {
            client.post(format!("{base}/api/v1/signup")).json(&json!({ "email": email, "password": PASSWORD })).send()
        };
        let first = signup("first@example.com").await.unwrap();
        assert_eq!(first.status(), 201);
        assert_eq!(first.json::<Value>().await.unwrap()["operator"], true);
        let second = signup("second@example.com").await.unwrap();
        assert_eq!(second.status(), 403);
        assert_eq!(second.json::<Value>().await.unwrap()["error"]["code"], "invite_required");
    });
    let _ = child.kill();
    let _ = child.wait();
}
