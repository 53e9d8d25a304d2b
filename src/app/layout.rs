//! The dashboard frame: top bar with navigation and the account menu, around each section.

use leptos::prelude::*;
use leptos_router::{
    components::{Outlet, Redirect, A},
    hooks::use_location,
};

use super::{
    components::{error_text, Brand},
    pages::not_found::NotFound,
    server_fns::{current_account, LogOut},
};
use crate::model::AccountView;

/// Frame of every logged-in page. Full page loads without a session never get here (the server
/// redirects them); if the session ends while the app runs, this sends the visitor to login.
#[component]
pub fn DashboardLayout() -> impl IntoView {
    let account = Resource::new(|| (), |_| current_account());
    view! {
        <Suspense fallback=|| view! { <div class="page-loading" aria-busy="true">"Loading…"</div> }>
            {move || Suspend::new(async move {
                match account.await {
                    Ok(Some(account)) => view! { <Frame account/> }.into_any(),
                    // The operator's page is not advertised: a 404, not a way to log in.
                    Ok(None) if use_location().pathname.get_untracked().starts_with("/admin") => {
                        view! { <NotFound/> }.into_any()
                    }
                    Ok(None) => view! { <Redirect path="/login"/> }.into_any(),
                    Err(err) => view! {
                        <main class="error-page">
                            <h1>"Something went wrong"</h1>
                            <p>{error_text(&err)}</p>
                            <a class="button" href="/login">"Go to log in"</a>
                        </main>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Frame(account: AccountView) -> impl IntoView {
    provide_context(account.clone());
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="topbar">
            <div class="topbar-inner">
                <a href="/tokens" class="brand-link" aria-label="ferrocast home"><Brand/></a>
                <nav class="mainnav" aria-label="Main">
                    <A href="/tokens">"Tokens"</A>
                    <A href="/live">"Live"</A>
                    <A href="/recordings">"Recordings"</A>
                    <A href="/viewer-tokens">"Viewer tokens"</A>
                    <A href="/webhooks">"Webhooks"</A>
                    <A href="/api-keys">"API keys"</A>
                    {account.operator.then(|| view! { <A href="/admin">"Admin"</A> })}
                </nav>
                <AccountMenu account/>
            </div>
        </header>
        <main id="main" class="content">
            <Outlet/>
        </main>
    }
}

/// The account button and its drop-down (account id, log out). A `<details>` disclosure, so it
/// opens without JavaScript too; once hydrated it also closes itself on navigation.
#[component]
fn AccountMenu(account: AccountView) -> impl IntoView {
    let open = RwSignal::new(false);
    let logout = ServerAction::<LogOut>::new();
    let initial = account.email.chars().next().map(|c| c.to_ascii_uppercase()).unwrap_or('?');
    let location = use_location();
    Effect::new(move |_| {
        location.pathname.track();
        open.set(false);
    });
    view! {
        <details class="account-menu" prop:open=move || open.get() on:toggle=move |ev| {
            open.set(event_target::<web_sys::HtmlDetailsElement>(&ev).open());
        }>
            <summary class="account-button" aria-label="Account menu">
                <span class="avatar" aria-hidden="true">{initial.to_string()}</span>
                <span class="account-email">{account.email.clone()}</span>
                <span class="chevron" aria-hidden="true">"▾"</span>
            </summary>
            <div class="menu-panel">
                <div class="menu-header">
                    <span class="menu-label">"Signed in as"</span>
                    <strong class="menu-email">{account.email.clone()}</strong>
                    <span class="menu-label">"Account ID " <code class="account-id">{account.account_id.clone()}</code></span>
                </div>
                <a class="menu-item" href="/account">"Account settings"</a>
                <ActionForm action=logout>
                    <button type="submit" class="menu-item">"Log out"</button>
                </ActionForm>
            </div>
        </details>
    }
}
