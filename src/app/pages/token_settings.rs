//! `/tokens/{id}`: edit a token, rotate its secret, delete it; the URLs to publish and watch.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    hooks::{use_navigate, use_params_map},
    NavigateOptions,
};

use super::{token_form::TokenFields, tokens::DeleteTokenDialog};
use crate::{
    app::{
        components::{error_text, Badge, ConfirmDialog, FormError, SecretReveal},
        server_fns::{get_token, site_info, DeleteToken, RotateToken, SaveToken},
    },
    model::{display_time, AccountView, SiteInfo, TokenView},
};

#[component]
pub fn TokenSettingsPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let token = Resource::new(id, get_token);
    let info = Resource::new(|| (), |_| site_info());
    view! {
        <Title text="Token settings"/>
        <nav class="breadcrumbs" aria-label="Breadcrumb"><a href="/tokens">"Tokens"</a>" / Settings"</nav>
        <Suspense fallback=|| view! { <p class="page-loading">"Loading token…"</p> }>
            {move || Suspend::new(async move {
                match (token.await, info.await) {
                    (Ok(token), Ok(info)) => view! { <TokenSettings token info/> }.into_any(),
                    (Err(err), _) | (_, Err(err)) => view! {
                        <div class="error-page">
                            <h1>"Token not found"</h1>
                            <p>{error_text(&err)}</p>
                            <a class="button" href="/tokens">"Back to tokens"</a>
                        </div>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn TokenSettings(token: TokenView, info: SiteInfo) -> impl IntoView {
    let account = expect_context::<AccountView>();
    let save = ServerAction::<SaveToken>::new();
    let rotate = ServerAction::<RotateToken>::new();
    let delete = ServerAction::<DeleteToken>::new();
    let asking = RwSignal::new(None::<&'static str>);
    let saved = Memo::new(move |_| save.value().get().and_then(|r| r.ok()));
    let error = Signal::derive(move || {
        save.value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| rotate.value().get().and_then(|r| r.err()))
            .or_else(|| delete.value().get().and_then(|r| r.err()))
            .map(|e| error_text(&e))
    });
    let rotated = Memo::new(move |_| rotate.value().get().and_then(|r| r.ok()).map(|r| r.secret));
    Effect::new(move |_| {
        if rotate.value().with(|v| matches!(v, Some(Ok(_)))) {
            asking.set(None);
        }
    });
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            navigate("/tokens", NavigateOptions::default());
        }
    });

    let label = token.label.clone();
    let id = token.id.clone();
    let names: Vec<String> = token.streams.iter().filter(|s| !s.contains('*')).cloned().collect();
    let patterns: Vec<String> = token.streams.iter().filter(|s| s.contains('*')).cloned().collect();
    let base = info.public_url.clone();
    view! {
        <div class="page-header">
            <div>
                <h1>{token.label.clone()}</h1>
                <p class="lede">
                    <code>{token.hint.clone()}</code>
                    " · created " {display_time(&token.created_at)}
                    " · last used " {token.last_used_at.as_deref().map(display_time).unwrap_or_else(|| "never".into())}
                </p>
            </div>
            <a class="button primary" rel="external" href=format!("/tokens/{}/broadcast", token.id)>"Open broadcaster"</a>
            {if token.enabled { view! { <Badge text="Enabled" tone="success"/> } } else { view! { <Badge text="Disabled" tone="muted"/> } }}
        </div>

        {move || rotated.get().map(|secret| view! { <SecretReveal secret what="publish token"/> })}

        <div class="settings-grid">
            <section class="card">
                <h2>"Settings"</h2>
                <FormError message=error/>
                {move || saved.get().map(|t| view! {
                    <div class="alert success" role="status">{format!("Saved at {}.", display_time(&t.updated_at))}</div>
                })}
                <ActionForm action=save attr:class="stack">
                    <input type="hidden" name="id" value=token.id.clone()/>
                    <TokenFields token=Some(token.clone())/>
                    <div class="form-actions">
                        <button type="submit" class="primary" disabled=move || save.pending().get()>
                            {move || if save.pending().get() { "Saving…" } else { "Save changes" }}
                        </button>
                    </div>
                </ActionForm>
            </section>

            <aside class="stack">
                <section class="card">
                    <h2>"Publish"</h2>
                    <p class="hint">"WHIP URL for an encoder; use the token secret as its bearer token."</p>
                    <ul class="url-list">
                        {names.iter().map(|s| view! { <li><code>{format!("{base}/whip/{s}")}</code></li> }).collect_view()}
                        {patterns.iter().map(|p| view! {
                            <li><code>{format!("{base}/whip/<stream name>")}</code>
                                <span class="hint">{if p == "*" { " any name".to_owned() } else { format!(" a name matching {p}") }}</span></li>
                        }).collect_view()}
                    </ul>
                </section>
                <section class="card">
                    <h2>"Watch"</h2>
                    <p class="hint">"Viewer links, one per stream name."</p>
                    <ul class="url-list">
                        {names.iter().map(|s| {
                            let link = format!("{base}/watch/{}/{s}", account.account_id);
                            view! { <li><a href=link.clone()>{link.clone()}</a></li> }
                        }).collect_view()}
                        {(!patterns.is_empty()).then(|| view! {
                            <li><code>{format!("{base}/watch/{}/<stream name>", account.account_id)}</code></li>
                        })}
                    </ul>
                </section>
                <section class="card danger-zone">
                    <h2>"Secret and deletion"</h2>
                    <div class="form-actions">
                        <button type="button" on:click=move |_| asking.set(Some("rotate"))>"Rotate secret…"</button>
                        <button type="button" class="danger" on:click=move |_| asking.set(Some("delete"))>"Delete token…"</button>
                    </div>
                </section>
            </aside>
        </div>

        {move || {
            let (id, label) = (id.clone(), label.clone());
            match asking.get() {
                Some("rotate") => Some(view! {
                    <ConfirmDialog
                        title=format!("Rotate the secret of “{label}”?")
                        message="A new secret is made and shown once; the current one stops working at once for new publishes.".to_owned()
                        confirm_label="Rotate secret"
                        pending=rotate.pending()
                        on_confirm=move || { rotate.dispatch(RotateToken { id: id.clone() }); }
                        on_cancel=move || asking.set(None)
                    />
                }.into_any()),
                Some(_) => Some(view! {
                    <DeleteTokenDialog id label delete on_cancel=move || asking.set(None)/>
                }.into_any()),
                None => None,
            }
        }}
    }
}
