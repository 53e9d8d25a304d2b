//! Log-in and sign-up pages.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    app::{
        components::{error_text, Brand, FormError, PasswordField},
        server_fns::{signup_info, LogIn, SignUp},
    },
    model::SignupPolicy,
};

/// Centred card used by the pages shown to logged-out visitors.
#[component]
fn AuthCard(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <main class="auth" id="main">
            <div class="auth-card">
                <div class="auth-brand"><Brand/></div>
                <h1>{title}</h1>
                {children()}
            </div>
            <p class="auth-tagline">"Real-time streaming you host yourself."</p>
        </main>
    }
}

/// The message to show: the action's error (hydrated) or `?error=` (plain form post).
fn form_error(
    result: impl Fn() -> Option<Result<(), leptos::server_fn::ServerFnError>> + Send + Sync + 'static,
) -> Signal<Option<String>> {
    let query = use_query_map();
    Signal::derive(move || match result() {
        Some(Err(err)) => Some(error_text(&err)),
        Some(Ok(_)) => None,
        None => query.read().get("error"),
    })
}

/// `/login`
#[component]
pub fn LoginPage() -> impl IntoView {
    let action = ServerAction::<LogIn>::new();
    let error = form_error(move || action.value().get());
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    view! {
        <Title text="Log in"/>
        <AuthCard title="Log in">
            <FormError message=error/>
            <ActionForm action=action attr:class="stack">
                <input type="hidden" name="next" value=next/>
                <div class="field">
                    <label for="email">"Email"</label>
                    <input id="email" name="email" type="email" autocomplete="username" required autofocus/>
                </div>
                <PasswordField name="password" label="Password" autocomplete="current-password"/>
                <button type="submit" class="primary wide" disabled=move || action.pending().get()>
                    {move || if action.pending().get() { "Logging in…" } else { "Log in" }}
                </button>
            </ActionForm>
            <p class="auth-switch">"New here? " <a href="/signup">"Create an account"</a></p>
        </AuthCard>
    }
}

/// `/signup`
#[component]
pub fn SignupPage() -> impl IntoView {
    let action = ServerAction::<SignUp>::new();
    let error = form_error(move || action.value().get());
    let info = Resource::new(|| (), |_| signup_info());
    let query = use_query_map();
    let invite = move || query.read().get("invite").unwrap_or_default();
    view! {
        <Title text="Create an account"/>
        <AuthCard title="Create an account">
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let invited = !invite().is_empty();
                    match info.await {
                        Ok(info) => signup_notice(info.policy, info.first_account, invited).map(|(class, text)| view! {
                            <div class=class role="status">
                                {text}
                            </div>
                        }).into_any(),
                        Err(_) => ().into_any(),
                    }
                })}
            </Suspense>
            <FormError message=error/>
            <ActionForm action=action attr:class="stack">
                <input type="hidden" name="invite" value=invite/>
                <div class="field">
                    <label for="email">"Email"</label>
                    <input id="email" name="email" type="email" autocomplete="email" required autofocus/>
                </div>
                <PasswordField
                    name="password"
                    label="Password"
                    autocomplete="new-password"
                    hint="At least 8 characters. A long passphrase is best."
                />
                <button type="submit" class="primary wide" disabled=move || action.pending().get()>
                    {move || if action.pending().get() { "Creating account…" } else { "Create account" }}
                </button>
            </ActionForm>
            <p class="auth-switch">"Already have an account? " <a href="/login">"Log in"</a></p>
        </AuthCard>
    }
}

/// What the sign-up page says above its form: who may sign up here, and how.
fn signup_notice(policy: SignupPolicy, first_account: bool, invited: bool) -> Option<(&'static str, &'static str)> {
    match policy {
        SignupPolicy::Closed => {
            Some(("alert info", "Sign-up is closed on this server. Ask its operator for an account."))
        }
        _ if first_account => Some((
            "alert info",
            "This server has no account yet: the account you create now runs it (its operator), and \
             invites the others.",
        )),
        SignupPolicy::Invite if invited => Some(("alert info", "You were invited: choose your email and password.")),
        SignupPolicy::Invite => Some((
            "alert info",
            "Sign-up on this server is by invite: ask its operator for an invite link, then open it.",
        )),
        SignupPolicy::Open => None,
    }
}
