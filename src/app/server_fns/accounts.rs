//! Account server functions: who is logged in, log in, sign up, log out.

use leptos::prelude::*;
use leptos::server_fn::ServerFnError;

#[cfg(feature = "ssr")]
use super::ssr;
use crate::model::AccountView;

/// The logged-in account, or `None`.
#[server(prefix = "/rpc", endpoint = "current_account")]
pub async fn current_account() -> Result<Option<AccountView>, ServerFnError> {
    use ssr::*;
    let state = state()?;
    let parts = request_parts()?;
    let account = crate::server::auth::account_from_parts(&state, &parts).await.map_err(|e| fail(e, None))?;
    Ok(account.as_ref().map(AccountView::from))
}

/// Facts about this server the pages show.
#[server(prefix = "/rpc", endpoint = "site_info")]
pub async fn site_info() -> Result<crate::model::SiteInfo, ServerFnError> {
    let state = ssr::state()?;
    Ok(crate::model::SiteInfo { public_url: state.settings.public_url.clone() })
}

/// Who may sign up here, for the sign-up page.
#[server(prefix = "/rpc", endpoint = "signup_info")]
pub async fn signup_info() -> Result<crate::model::SignupInfo, ServerFnError> {
    let state = ssr::state()?;
    let first_account = !crate::db::accounts::any_exists(&state.pool).await.map_err(|e| ssr::fail(e.into(), None))?;
    Ok(crate::model::SignupInfo { policy: state.accounts.signup_mode().policy(), first_account })
}

/// Logs in and goes to `next` (a local path) or the dashboard.
#[server(prefix = "/rpc", endpoint = "login")]
pub async fn log_in(email: String, password: String, next: Option<String>) -> Result<(), ServerFnError> {
    use ssr::*;
    let state = state()?;
    let client = client()?;
    let back = format!("/login?{}", next.as_deref().map(|n| format!("next={}&", encode(n))).unwrap_or_default());
    let logged_in = state.accounts.log_in(&email, &password, client.ip).await.map_err(|e| fail(e, Some(&back)))?;
    set_cookie(crate::server::session::set_cookie(&logged_in.session, client.secure_cookies));
    leptos_axum::redirect(&local_path_or_dashboard(next.as_deref()));
    Ok(())
}

/// Creates an account (with the invite from the sign-up link, if any), logs it in and opens the
/// dashboard.
#[server(prefix = "/rpc", endpoint = "signup")]
pub async fn sign_up(
    email: String,
    password: String,
    #[server(default)] invite: Option<String>,
) -> Result<(), ServerFnError> {
    use ssr::*;
    let state = state()?;
    let client = client()?;
    let invite = invite.filter(|code| !code.trim().is_empty());
    let back = match &invite {
        Some(code) => format!("/signup?invite={}&", encode(code)),
        None => "/signup?".to_owned(),
    };
    let account = state
        .accounts
        .sign_up(&email, &password, invite.as_deref(), client.ip)
        .await
        .map_err(|e| fail(e, Some(&back)))?;
    let session = state.accounts.open_session(&account).await.map_err(|e| fail(e, Some(&back)))?;
    set_cookie(crate::server::session::set_cookie(&session, client.secure_cookies));
    leptos_axum::redirect("/tokens");
    Ok(())
}

/// Revokes the session and goes to the login page.
#[server(prefix = "/rpc", endpoint = "logout")]
pub async fn log_out() -> Result<(), ServerFnError> {
    use ssr::*;
    let state = state()?;
    let parts = request_parts()?;
    let secure = client()?.secure_cookies;
    if let Some(id) = crate::server::session::from_headers(&parts.headers, secure) {
        state.accounts.log_out(id).await.map_err(|e| fail(e, None))?;
        state.grants.revoke_session(&crate::server::session::hash_id(id));
    }
    set_cookie(crate::server::session::clear_cookie(secure));
    leptos_axum::redirect("/login");
    Ok(())
}

/// Sets a new password; the other sessions of the account end, this one stays.
#[server(prefix = "/rpc", endpoint = "change_password")]
pub async fn change_password(current_password: String, new_password: String) -> Result<(), ServerFnError> {
    use ssr::*;
    let (state, account) = require_account().await?;
    let parts = request_parts()?;
    let this_session = crate::server::session::from_headers(&parts.headers, client()?.secure_cookies);
    crate::server::account_settings::change_password(&state, &account, &current_password, &new_password, this_session)
        .await
        .map_err(|e| fail(e, Some("/account?")))
}

/// Ends every session of the account, this one too, and goes to the login page.
#[server(prefix = "/rpc", endpoint = "logout_everywhere")]
pub async fn log_out_everywhere() -> Result<(), ServerFnError> {
    use ssr::*;
    let (state, account) = require_account().await?;
    crate::server::account_settings::log_out_everywhere(&state, &account)
        .await
        .map_err(|e| fail(e, Some("/account?")))?;
    set_cookie(crate::server::session::clear_cookie(client()?.secure_cookies));
    leptos_axum::redirect("/login");
    Ok(())
}

/// Deletes the account (after its password) with everything it owns, and goes to the sign-up page.
#[server(prefix = "/rpc", endpoint = "delete_account")]
pub async fn delete_account(password: String) -> Result<(), ServerFnError> {
    use ssr::*;
    let (state, account) = require_account().await?;
    crate::server::account_settings::delete_account(&state, &account, &password)
        .await
        .map_err(|e| fail(e, Some("/account?")))?;
    set_cookie(crate::server::session::clear_cookie(client()?.secure_cookies));
    leptos_axum::redirect("/signup");
    Ok(())
}
