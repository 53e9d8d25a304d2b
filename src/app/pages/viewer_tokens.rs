//! `/viewer-tokens`: subscribe tokens (`fcs_…`) that let their holders watch streams published
//! with a *Secure viewer* token (README "Viewer tokens").

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    app::{
        components::{error_text, Badge, ConfirmDialog, EmptyState, FormError, Icon, SecretReveal},
        server_fns::{list_viewer_tokens, site_info, CreateViewerToken, DeleteViewerToken, SetViewerTokenEnabled},
    },
    model::{display_time, AccountView, SubscribeTokenWithSecret},
};

#[component]
pub fn ViewerTokensPage() -> impl IntoView {
    let create = ServerAction::<CreateViewerToken>::new();
    let toggle = ServerAction::<SetViewerTokenEnabled>::new();
    let delete = ServerAction::<DeleteViewerToken>::new();
    let tokens = Resource::new(
        move || (create.version().get(), toggle.version().get(), delete.version().get()),
        |_| list_viewer_tokens(),
    );
    let info = Resource::new(|| (), |_| site_info());
    let confirming = RwSignal::new(None::<(String, String)>);
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            confirming.set(None);
        }
    });
    let created = Memo::new(move |_| create.value().get().and_then(|r| r.ok()));
    let error = Signal::derive(move || {
        create
            .value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| toggle.value().get().and_then(|r| r.err()))
            .or_else(|| delete.value().get().and_then(|r| r.err()))
            .map(|e| error_text(&e))
    });
    view! {
        <Title text="Viewer tokens"/>
        <div class="page-header">
            <div>
                <h1>"Viewer tokens"</h1>
                <p class="lede">
                    "Streams published with a token whose " <strong>"Secure viewer"</strong>
                    " box is ticked can only be watched with a viewer token: add "
                    <code>"?token=<secret>"</code> " to the viewer link, or send "
                    <code>"Authorization: Bearer <secret>"</code> " to WHEP."
                </p>
            </div>
        </div>
        {move || created.get().map(|created| view! {
            <SecretReveal secret=created.secret.clone() what="viewer token"/>
            <Suspense fallback=|| ()>
                {move || Suspend::new({
                    let created = created.clone();
                    async move { info.await.ok().map(|info| view! { <ViewerLink created public_url=info.public_url/> }) }
                })}
            </Suspense>
        })}
        <section class="card">
            <h2>"Create a viewer token"</h2>
            <FormError message=error/>
            <ActionForm action=create >
                <div class="field">
                    <label for="viewer-label">"Label"</label>
                    <input id="viewer-label" name="label" type="text" required maxlength="128" placeholder="Members, season 3"/>
                </div>
                <div class="field">
                    <label for="viewer-streams">"Stream names"</label>
                    <input id="viewer-streams" name="streams" type="text" required aria-describedby="viewer-streams-hint" placeholder="show, backstage-*"/>
                    <p class="hint" id="viewer-streams-hint">"Separated by spaces or commas; a prefix ends in *, and * alone is any stream."</p>
                </div>
                <div class="field">
                    <label for="viewer-expires">"Expires (UTC, optional)"</label>
                    <input id="viewer-expires" name="expires_utc" type="datetime-local"/>
                </div>
                <div class="field">
                    <label for="viewer-max">"Most viewers at once (optional)"</label>
                    <input id="viewer-max" name="max_viewers" type="number" min="1" step="1" inputmode="numeric" aria-describedby="viewer-max-hint"/>
                    <p class="hint" id="viewer-max-hint">"Past it, the next viewer is asked to try again later; empty for no cap."</p>
                </div>
                <button type="submit" class="primary" disabled=move || create.pending().get()>"Create viewer token"</button>
            </ActionForm>
        </section>
        <Suspense fallback=|| view! { <p class="page-loading">"Loading viewer tokens…"</p> }>
            {move || Suspend::new(async move {
                match tokens.await {
                    Err(err) => view! { <div class="alert error" role="alert">{error_text(&err)}</div> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <EmptyState title="No viewer tokens" icon=Icon::Key>
                            <p>"Create one above for the people who may watch your secure streams."</p>
                        </EmptyState>
                    }.into_any(),
                    Ok(list) => view! {
                        <div class="table-wrap">
                            <table class="data-table" id="viewer-tokens">
                                <thead><tr>
                                    <th scope="col">"Label"</th>
                                    <th scope="col">"Streams"</th>
                                    <th scope="col">"Status"</th>
                                    <th scope="col">"Last used"</th>
                                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|token| {
                                        let (id, label, enabled) = (token.id.clone(), token.label.clone(), token.enabled);
                                        let toggle_id = id.clone();
                                        view! {
                                            <tr data-token-id=token.id.clone()>
                                                <th scope="row">{token.label.clone()}<div class="row-sub"><code>{token.hint.clone()}</code></div></th>
                                                <td>{token.streams.join(", ")}</td>
                                                <td>
                                                    <div class="badges">
                                                        {if enabled { view! { <Badge text="Enabled" tone="success"/> } } else { view! { <Badge text="Disabled" tone="muted"/> } }}
                                                        {token.max_viewers.map(|max| view! { <span class="badge muted">{format!("Up to {max} viewers")}</span> })}
                                                        {token.expires_at.as_deref().map(|at| view! { <span class="hint">{format!("expires {}", display_time(at))}</span> })}
                                                    </div>
                                                </td>
                                                <td class="muted">{token.last_used_at.as_deref().map(display_time).unwrap_or_else(|| "Never".into())}</td>
                                                <td class="actions-cell">
                                                    <ActionForm action=toggle>
                                                        <input type="hidden" name="id" value=toggle_id/>
                                                        <input type="hidden" name="enabled" value=(!enabled).to_string()/>
                                                        <button type="submit" class="small">{if enabled { "Disable" } else { "Enable" }}</button>
                                                    </ActionForm>
                                                    <button type="button" class="small danger-text"
                                                        on:click=move |_| confirming.set(Some((id.clone(), label.clone())))>
                                                        "Delete…"
                                                    </button>
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                }
            })}
        </Suspense>
        {move || confirming.get().map(|(id, label)| view! {
            <ConfirmDialog
                title=format!("Delete “{label}”?")
                message="Everyone watching with it is refused from their next connection on. This cannot be undone.".to_owned()
                confirm_label="Delete viewer token"
                danger=true
                pending=delete.pending()
                on_confirm=move || { delete.dispatch(DeleteViewerToken { id: id.clone() }); }
                on_cancel=move || confirming.set(None)
            />
        })}
    }
}

/// The viewer link to share for a new token's first exact stream name.
#[component]
fn ViewerLink(created: SubscribeTokenWithSecret, public_url: String) -> impl IntoView {
    let account = expect_context::<AccountView>();
    let stream = created.token.streams.iter().find(|s| !s.ends_with('*')).cloned();
    stream.map(|stream| {
        let link = format!("{public_url}/watch/{}/{stream}?token={}", account.account_id, created.secret);
        view! {
            <section class="card">
                <h2>"Viewer link"</h2>
                <p class="hint">"Opens the viewer with this token; the page trades it for a short-lived grant at once, so it does not stay in the address bar."</p>
                <code class="secret-value" data-testid="viewer-link">{link}</code>
            </section>
        }
    })
}
