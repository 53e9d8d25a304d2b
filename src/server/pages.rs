//! Which pages need an account: full page loads are redirected before anything renders.

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{
    auth::{account_from_headers, ResolvedAccount},
    client::Client,
    AppState,
};

/// Dashboard sections; each path under them needs a logged-in account.
const DASHBOARD_SECTIONS: &[&str] =
    &["/tokens", "/live", "/viewer-tokens", "/webhooks", "/api-keys", "/recordings", "/account"];
/// The operator's page: 404 for everyone else, logged in or not (the page decides, so that the
/// same 404 hydrates), so it is not redirected to login either.
const OPERATOR_PAGE: &str = "/admin";
/// Pages only for people who are not logged in.
const GUEST_PAGES: &[&str] = &["/login", "/signup"];

/// Redirects `/` to the dashboard or the login page, the dashboard to login when there is no
/// session (remembering where the visitor wanted to go), and login/signup to the dashboard when
/// there is one.
pub async fn guard(State(state): State<AppState>, mut request: Request<Body>, next: Next) -> Response {
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let uri = request.uri().clone();
    let path = uri.path();
    let in_dashboard = DASHBOARD_SECTIONS.iter().any(|s| path == *s || path.starts_with(&format!("{s}/")));
    let guest_only = GUEST_PAGES.contains(&path);
    if !(path == "/" || in_dashboard || guest_only || path == OPERATOR_PAGE) {
        return next.run(request).await;
    }
    // A database error here must not lock people out with a blank page: treat as logged out
    // and let the page itself report what fails.
    let client = Client::from_extensions(request.extensions());
    let logged_in = match account_from_headers(&state, request.headers(), client).await {
        Ok(account) => {
            let logged_in = account.is_some();
            // The page's server functions reuse it instead of asking the database again.
            request.extensions_mut().insert(ResolvedAccount(account));
            logged_in
        }
        Err(_) => false,
    };
    match (path, logged_in) {
        ("/", true) => see_other("/tokens"),
        ("/", false) => see_other("/login"),
        (_, false) if in_dashboard => {
            let wanted = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or(path);
            see_other(&format!("/login?next={}", crate::app::server_fns::ssr::encode(wanted)))
        }
        (_, true) if guest_only => see_other("/tokens"),
        _ => next.run(request).await,
    }
}

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        Err(_) => (StatusCode::SEE_OTHER, [(header::LOCATION, HeaderValue::from_static("/login"))]).into_response(),
    }
}
