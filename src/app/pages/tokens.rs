//! `/tokens`: the account's publish tokens with a quick-action menu per row.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    app::{
        components::{error_text, Badge, ConfirmDialog, EmptyState, Icon, RowMenu},
        pages::live::refresh_ticker,
        server_fns::{list_tokens, live_streams, DeleteToken, SetTokenEnabled},
    },
    model::{display_time, AccountView, TokenView},
};

/// The token list.
#[component]
pub fn TokensPage() -> impl IntoView {
    let watch_pattern = format!("/watch/{}/<stream name>", expect_context::<AccountView>().account_id);
    let toggle = ServerAction::<SetTokenEnabled>::new();
    let delete = ServerAction::<DeleteToken>::new();
    let tokens = Resource::new(move || (toggle.version().get(), delete.version().get()), |_| list_tokens());
    // Which tokens feed a live stream right now (refreshed like the Live page).
    let tick = refresh_ticker();
    let live = Resource::new(move || (tick.get(), delete.version().get()), |_| live_streams());
    // (token id, the recorder writes one of its feeds now) per live source.
    let live_tokens = Signal::derive(move || {
        live.get()
            .and_then(Result::ok)
            .map(|streams| {
                streams
                    .into_iter()
                    .flat_map(|s| s.sources)
                    .map(|source| (source.token_id, source.recording))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    });
    // The token waiting for the delete confirmation.
    let confirming = RwSignal::new(None::<(String, String)>);
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            confirming.set(None);
        }
    });
    let action_error = move || {
        let failed = |r: Option<Result<_, _>>| r.and_then(|r: Result<(), _>| r.err());
        failed(delete.value().get())
            .or_else(|| toggle.value().get().and_then(|r| r.err()))
            .map(|err| view! { <div class="alert error" role="alert">{error_text(&err)}</div> })
    };

    view! {
        <Title text="Tokens"/>
        <div class="page-header">
            <div>
                <h1>"Publish tokens"</h1>
                <p class="lede">"A publish token lets an encoder or the online broadcaster go live on your streams."</p>
            </div>
            <a class="button primary" href="/tokens/new">"+ Create token"</a>
        </div>
        {action_error}
        <Suspense fallback=|| view! { <p class="page-loading">"Loading tokens…"</p> }>
            {move || {
                let watch_pattern = watch_pattern.clone();
                Suspend::new(async move {
                match tokens.await {
                    Err(err) => view! { <div class="alert error" role="alert">{error_text(&err)}</div> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <EmptyState title="No publish tokens yet" icon=Icon::Key>
                            <p>
                                "Each token names the streams it may publish, and can be disabled or deleted at any time. "
                                "Viewers will find your streams at "
                                <code>{watch_pattern}</code>"."
                            </p>
                            <a class="button primary" href="/tokens/new">"Create your first token"</a>
                        </EmptyState>
                    }.into_any(),
                    Ok(list) => view! {
                        <div class="table-wrap">
                            <table class="data-table">
                                <thead>
                                    <tr>
                                        <th scope="col">"Label"</th>
                                        <th scope="col">"Streams"</th>
                                        <th scope="col">"Status"</th>
                                        <th scope="col">"Last used"</th>
                                        <th scope="col">"Created"</th>
                                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {list.into_iter().map(|token| view! { <TokenRow token toggle confirming live_tokens/> }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                }
            })}}
        </Suspense>
        {move || confirming.get().map(|(id, label)| view! {
            <DeleteTokenDialog id label delete on_cancel=move || confirming.set(None)/>
        })}
    }
}

/// The confirmation before a token is deleted, naming it; shared by the list and the settings
/// page.
#[component]
pub fn DeleteTokenDialog(
    id: String,
    label: String,
    delete: ServerAction<DeleteToken>,
    on_cancel: impl Fn() + Send + Sync + Clone + 'static,
) -> impl IntoView {
    view! {
        <ConfirmDialog
            title=format!("Delete “{label}”?")
            message="Encoders and broadcasters using this token will be refused from now on, and the feeds it is publishing end now. (To stop new publishes but keep live feeds running, disable it instead.) This cannot be undone.".to_owned()
            confirm_label="Delete token"
            danger=true
            pending=delete.pending()
            on_confirm=move || { delete.dispatch(DeleteToken { id: id.clone() }); }
            on_cancel
        />
    }
}

#[component]
fn TokenRow(
    token: TokenView,
    toggle: ServerAction<SetTokenEnabled>,
    confirming: RwSignal<Option<(String, String)>>,
    live_tokens: Signal<Vec<(String, bool)>>,
) -> impl IntoView {
    let token_id = token.id.clone();
    let live_id = token_id.clone();
    let is_live = move || live_tokens.with(|feeds| feeds.iter().any(|(id, _)| *id == live_id));
    let is_recording = move || live_tokens.with(|feeds| feeds.iter().any(|(id, rec)| *rec && *id == token_id));
    let settings = format!("/tokens/{}", token.id);
    let streams = if token.allows_any_stream() { "any stream".to_owned() } else { token.streams.join(", ") };
    let enabled = token.enabled;
    // Copy handles: the menu's children are rebuilt each time it opens.
    let id = StoredValue::new(token.id.clone());
    let label = StoredValue::new(token.label.clone());
    let settings_link = StoredValue::new(settings.clone());
    let menu_open = RwSignal::new(false);
    view! {
        <tr class:disabled-row=!enabled data-token-id=token.id.clone()>
            <th scope="row">
                <a href=settings.clone() class="row-title">{token.label.clone()}</a>
                <div class="row-sub"><code>{token.hint.clone()}</code></div>
            </th>
            <td class="streams-cell">{streams}</td>
            <td>
                <div class="badges">
                    {move || is_live().then(|| view! { <Badge text="Live" tone="live"/> })}
                    {move || is_recording().then(|| view! { <Badge text="Rec" tone="live"/> })}
                    {if enabled { view! { <Badge text="Enabled" tone="success"/> } } else { view! { <Badge text="Disabled" tone="muted"/> } }}
                    {token.record.then(|| view! { <Badge text="Recording allowed" tone="accent"/> })}
                    {token.multisource.then(|| view! { <Badge text="Multisource" tone="info"/> })}
                    {token.expires_at.as_ref().map(|_| view! { <Badge text="Expires"/> })}
                    {token.secure_viewer.then(|| view! { <Badge text="Secure viewer" tone="info"/> })}
                    {token.embed_origins.as_ref().map(|_| view! { <Badge text="Embed: listed sites"/> })}
                </div>
            </td>
            <td class="muted">{token.last_used_at.as_deref().map(display_time).unwrap_or_else(|| "Never".into())}</td>
            <td class="muted">{display_time(&token.created_at)}</td>
            <td class="actions-cell">
                <RowMenu label=format!("Actions for {}", token.label) open=menu_open>
                    <ActionForm action=toggle>
                        <input type="hidden" name="id" value=id.get_value()/>
                        <input type="hidden" name="enabled" value=(!enabled).to_string()/>
                        <button type="submit" class="menu-item" role="menuitem">
                            {if enabled { "Disable" } else { "Enable" }}
                        </button>
                    </ActionForm>
                    <a class="menu-item" role="menuitem" rel="external" href=format!("{}/broadcast", settings_link.get_value())>
                        "Broadcast"
                    </a>
                    <a class="menu-item" role="menuitem" href=settings_link.get_value()>"Settings"</a>
                    <button
                        type="button"
                        class="menu-item danger-text"
                        role="menuitem"
                        on:click=move |_| {
                            menu_open.set(false);
                            confirming.set(Some((id.get_value(), label.get_value())));
                        }
                    >
                        "Delete…"
                    </button>
                </RowMenu>
            </td>
        </tr>
    }
}
