//! The Leptos application: the HTML shell, the routes, and the pages.
//! Rendered on the server (ssr) and hydrated in the browser (hydrate).

mod components;
mod layout;
mod pages;
pub mod server_fns;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{ParentRoute, Route, Router, Routes},
    path, SsrMode,
};

use layout::DashboardLayout;
use pages::{
    account::AccountPage,
    admin::AdminPage,
    api_keys::ApiKeysPage,
    auth::{LoginPage, SignupPage},
    broadcast::BroadcastPage,
    live::LivePage,
    not_found::NotFound,
    recordings::RecordingsPage,
    token_new::NewTokenPage,
    token_settings::TokenSettingsPage,
    tokens::TokensPage,
    viewer_tokens::ViewerTokensPage,
    webhooks::WebhooksPage,
};

/// The document around the app: head, hydration scripts, body.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_script_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// Only scripts this response names may run: those carrying its nonce (the hydration scripts,
/// the page modules), and what they load (`'strict-dynamic'`), plus compiling the page's wasm. An
/// injected `<script>` or `on…=` attribute does not run. (`frame-ancestors` is added for every
/// response by the security headers.)
#[cfg(feature = "ssr")]
fn set_script_policy() {
    let (Some(nonce), Some(response)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    else {
        return;
    };
    let policy =
        format!("script-src 'nonce-{nonce}' 'strict-dynamic' 'wasm-unsafe-eval'; object-src 'none'; base-uri 'none'");
    if let Ok(value) = http::HeaderValue::from_str(&policy) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The routed application.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    mark_hydrated();

    view! {
        <Stylesheet id="ferrocast" href="/pkg/ferrocast.css"/>
        <Link rel="icon" href="/favicon.ico"/>
        <Title formatter=|page: String| if page.is_empty() { "ferrocast".to_owned() } else { format!("{page} · ferrocast") }/>
        // Async: each page is rendered once its data is in (local SQLite, sub-millisecond),
        // instead of streaming a fallback and then the data out of order — half the work per
        // page (`cargo bench --bench web`), and the first byte already holds the content.
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                <Route path=path!("/signup") view=SignupPage ssr=SsrMode::Async/>
                <ParentRoute path=path!("") view=DashboardLayout>
                    <Route path=path!("/tokens") view=TokensPage ssr=SsrMode::Async/>
                    <Route path=path!("/tokens/new") view=NewTokenPage ssr=SsrMode::Async/>
                    <Route path=path!("/tokens/:id") view=TokenSettingsPage ssr=SsrMode::Async/>
                    <Route path=path!("/tokens/:id/broadcast") view=BroadcastPage ssr=SsrMode::Async/>
                    <Route path=path!("/live") view=LivePage ssr=SsrMode::Async/>
                    <Route path=path!("/recordings") view=RecordingsPage ssr=SsrMode::Async/>
                    <Route path=path!("/viewer-tokens") view=ViewerTokensPage ssr=SsrMode::Async/>
                    <Route path=path!("/webhooks") view=WebhooksPage ssr=SsrMode::Async/>
                    <Route path=path!("/api-keys") view=ApiKeysPage ssr=SsrMode::Async/>
                    <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin") view=AdminPage ssr=SsrMode::Async/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// Sets `data-hydrated` on `<body>` once the wasm has taken over the page: effects never run on
/// the server, so the attribute tells tests (and curious people) that hydration happened.
fn mark_hydrated() {
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(body) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()) {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
}
