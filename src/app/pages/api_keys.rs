//! `/api-keys`: keys for scripts and automation (`Authorization: Bearer fck_…`).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    app::{
        components::{error_text, ConfirmDialog, EmptyState, FormError, Icon, SecretReveal},
        server_fns::{list_api_keys, CreateApiKey, DeleteApiKey},
    },
    model::display_time,
};

#[component]
pub fn ApiKeysPage() -> impl IntoView {
    let create = ServerAction::<CreateApiKey>::new();
    let delete = ServerAction::<DeleteApiKey>::new();
    let keys = Resource::new(move || (create.version().get(), delete.version().get()), |_| list_api_keys());
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
            .or_else(|| delete.value().get().and_then(|r| r.err()))
            .map(|e| error_text(&e))
    });
    view! {
        <Title text="API keys"/>
        <div class="page-header">
            <div>
                <h1>"API keys"</h1>
                <p class="lede">
                    "For scripts and automation: send " <code>"Authorization: Bearer <key>"</code>
                    " to any " <code>"/api/v1"</code> " route, with the rights of your account."
                </p>
            </div>
        </div>
        {move || created.get().map(|k| view! { <SecretReveal secret=k.secret what="API key"/> })}
        <section class="card">
            <h2>"Create a key"</h2>
            <FormError message=error/>
            <ActionForm action=create attr:class="inline-form">
                <div class="field grow">
                    <label for="key-label">"Label"</label>
                    <input id="key-label" name="label" type="text" required maxlength="128" placeholder="CI deploy script"/>
                </div>
                <button type="submit" class="primary" disabled=move || create.pending().get()>"Create key"</button>
            </ActionForm>
        </section>
        <Suspense fallback=|| view! { <p class="page-loading">"Loading keys…"</p> }>
            {move || Suspend::new(async move {
                match keys.await {
                    Err(err) => view! { <div class="alert error" role="alert">{error_text(&err)}</div> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <EmptyState title="No API keys" icon=Icon::Key>
                            <p>"Create one above to manage tokens from a script."</p>
                        </EmptyState>
                    }.into_any(),
                    Ok(list) => view! {
                        <div class="table-wrap">
                            <table class="data-table">
                                <thead><tr>
                                    <th scope="col">"Label"</th>
                                    <th scope="col">"Key"</th>
                                    <th scope="col">"Last used"</th>
                                    <th scope="col">"Created"</th>
                                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|key| {
                                        let (id, label) = (key.id.clone(), key.label.clone());
                                        view! {
                                            <tr>
                                                <th scope="row">{key.label.clone()}</th>
                                                <td><code>{key.hint.clone()}</code></td>
                                                <td class="muted">{key.last_used_at.as_deref().map(display_time).unwrap_or_else(|| "Never".into())}</td>
                                                <td class="muted">{display_time(&key.created_at)}</td>
                                                <td class="actions-cell">
                                                    <button type="button" class="small danger-text"
                                                        on:click=move |_| confirming.set(Some((id.clone(), label.clone())))>
                                                        "Revoke…"
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
                title=format!("Revoke “{label}”?")
                message="Scripts using this key will be refused from now on. This cannot be undone.".to_owned()
                confirm_label="Revoke key"
                danger=true
                pending=delete.pending()
                on_confirm=move || { delete.dispatch(DeleteApiKey { id: id.clone() }); }
                on_cancel=move || confirming.set(None)
            />
        })}
    }
}
