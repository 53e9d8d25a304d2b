//! The page for any path nothing else claims.

use leptos::prelude::*;
use leptos_meta::Title;

/// 404. Sets the status on a full page load; client-side navigations just show the page.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found"/>
        <main class="error-page" id="main">
            <p class="error-code">"404"</p>
            <h1>"Page not found"</h1>
            <p>"The page you asked for does not exist or has moved."</p>
            <a class="button primary" href="/">"Back to the dashboard"</a>
        </main>
    }
}
