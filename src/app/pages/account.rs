//! `/account`: the account's own settings — its password, its sessions, and deleting it.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::app::{
    components::{error_text, FormError, PasswordField},
    server_fns::{current_account, ChangePassword, DeleteAccount, LogOutEverywhere},
};

#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let everywhere = ServerAction::<LogOutEverywhere>::new();
    let delete = ServerAction::<DeleteAccount>::new();
    let account = Resource::new(|| (), |_| current_account());
    let query = use_query_map();
    // A plain form post (no JavaScript yet) comes back with `?error=`.
    let posted_error = move || query.read().get("error");
    let change_error = Signal::derive(move || match change.value().get() {
        Some(Err(err)) => Some(error_text(&err)),
        Some(Ok(())) => None,
        None => posted_error(),
    });
    let changed = move || matches!(change.value().get(), Some(Ok(())));
    let everywhere_error =
        Signal::derive(move || everywhere.value().get().and_then(|r| r.err()).map(|e| error_text(&e)));
    let delete_error = Signal::derive(move || delete.value().get().and_then(|r| r.err()).map(|e| error_text(&e)));
    view! {
        <Title text="Account"/>
        <div class="page-header">
            <div>
                <h1>"Account"</h1>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        account.await.ok().flatten().map(|a| view! {
                            <p class="lede">"Signed in as " <strong>{a.email}</strong> " · account ID " <code>{a.account_id}</code></p>
                        })
                    })}
                </Suspense>
            </div>
        </div>
        <section class="card narrow">
            <h2>"Change password"</h2>
            <p class="muted">"Every other browser signed in to this account is logged out."</p>
            <FormError message=change_error/>
            {move || changed().then(|| view! { <div class="alert info" role="status">"Password changed."</div> })}
            <ActionForm action=change attr:class="stack" attr:id="change-password">
                <PasswordField name="current_password" label="Current password" autocomplete="current-password"/>
                <PasswordField name="new_password" label="New password" autocomplete="new-password" hint="At least 8 characters."/>
                <button type="submit" class="primary" disabled=move || change.pending().get()>"Change password"</button>
            </ActionForm>
        </section>
        <section class="card narrow">
            <h2>"Log out everywhere"</h2>
            <p class="muted">"Ends every session of this account, this one too. API keys and publish tokens keep working."</p>
            <FormError message=everywhere_error/>
            <ActionForm action=everywhere attr:id="logout-everywhere">
                <button type="submit" disabled=move || everywhere.pending().get()>"Log out everywhere"</button>
            </ActionForm>
        </section>
        <section class="card narrow danger-zone">
            <h2>"Delete account"</h2>
            <p class="muted">
                "Deletes this account for good: its publish tokens and API keys, its recordings and their files. "
                "Its live broadcasts stop now."
            </p>
            <FormError message=delete_error/>
            <ActionForm action=delete attr:class="stack" attr:id="delete-account">
                <PasswordField name="password" label="Your password, to confirm" autocomplete="current-password"/>
                <button type="submit" class="danger" disabled=move || delete.pending().get()>"Delete account"</button>
            </ActionForm>
        </section>
    }
}
