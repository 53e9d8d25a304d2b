//! `/webhooks`: endpoints that hear of the account's streams, each with its delivery log,
//! **Send test event** and **Resend** (README "Webhooks").

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    app::{
        components::{error_text, Badge, ConfirmDialog, EmptyState, FormError, Icon, SecretReveal},
        pages::live::refresh_ticker,
        server_fns::{list_webhooks, CreateWebhook, DeleteWebhook, ResendWebhook, SendTestWebhook, SetWebhookEnabled},
    },
    model::{display_time, WebhookDeliveryView, WebhookEndpointView},
};

/// The events the form offers, with what each means.
const EVENTS: [(&str, &str); 8] = [
    ("stream.started", "a stream went live"),
    ("stream.ended", "a stream ended"),
    ("source.started", "a feed of a stream connected"),
    ("source.ended", "a feed of a stream ended"),
    ("viewers.first", "the first viewer came"),
    ("viewers.none", "the last viewer left"),
    ("recording.ready", "a recording is complete"),
    ("publish.refused", "a publish with your token was refused, and why"),
];

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let create = ServerAction::<CreateWebhook>::new();
    let toggle = ServerAction::<SetWebhookEnabled>::new();
    let delete = ServerAction::<DeleteWebhook>::new();
    let test = ServerAction::<SendTestWebhook>::new();
    let resend = ServerAction::<ResendWebhook>::new();
    // The logs change by themselves (deliveries and retries): refresh like the Live page.
    let tick = refresh_ticker();
    let endpoints = Resource::new(
        move || {
            (
                tick.get(),
                create.version().get(),
                toggle.version().get(),
                delete.version().get(),
                test.version().get(),
                resend.version().get(),
            )
        },
        |_| list_webhooks(),
    );
    let confirming = RwSignal::new(None::<(String, String)>);
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            confirming.set(None);
        }
    });
    let created = Memo::new(move |_| create.value().get().and_then(|r| r.ok()));
    let error = Signal::derive(move || {
        let failed = |e: Option<Result<_, ServerFnError>>| e.and_then(|r| r.err());
        failed(create.value().get().map(|r| r.map(|_| ())))
            .or_else(|| failed(toggle.value().get().map(|r| r.map(|_| ()))))
            .or_else(|| failed(delete.value().get()))
            .or_else(|| failed(test.value().get().map(|r| r.map(|_| ()))))
            .or_else(|| failed(resend.value().get().map(|r| r.map(|_| ()))))
            .map(|e| error_text(&e))
    });
    view! {
        <Title text="Webhooks"/>
        <div class="page-header">
            <div>
                <h1>"Webhooks"</h1>
                <p class="lede">
                    "Your own systems hear when your streams start and end, when viewers come and go, when a recording is ready
                    and when a publish is refused: a signed JSON POST to each endpoint, retried for a day."
                </p>
            </div>
        </div>
        {move || created.get().map(|created| view! { <SecretReveal secret=created.secret what="signing secret"/> })}
        <FormError message=error/>
        <section class="card">
            <h2>"Add an endpoint"</h2>
            <ActionForm action=create>
                <div class="field">
                    <label for="webhook-url">"URL"</label>
                    <input id="webhook-url" name="url" type="url" required maxlength="2048" placeholder="https://hooks.example.com/ferrocast"/>
                </div>
                <fieldset class="field">
                    <legend>"Events"</legend>
                    {EVENTS.iter().map(|(name, means)| view! {
                        <label class="check">
                            <input type="checkbox" name="events[]" value=*name checked=true/>
                            " "<code>{*name}</code>" "<span class="hint">{*means}</span>
                        </label>
                    }).collect_view()}
                </fieldset>
                <button type="submit" class="primary" disabled=move || create.pending().get()>"Add endpoint"</button>
            </ActionForm>
        </section>
        <Transition fallback=|| view! { <p class="page-loading">"Loading webhooks…"</p> }>
            {move || Suspend::new(async move {
                match endpoints.await {
                    Err(err) => view! { <div class="alert error" role="alert">{error_text(&err)}</div> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <EmptyState title="No endpoints" icon=Icon::Broadcast>
                            <p>"Add one above; each delivery is signed with its secret (README › Webhooks)."</p>
                        </EmptyState>
                    }.into_any(),
                    Ok(list) => list.into_iter().map(|(endpoint, log)| view! {
                        <Endpoint endpoint log toggle test resend confirming/>
                    }).collect_view().into_any(),
                }
            })}
        </Transition>
        {move || confirming.get().map(|(id, url)| view! {
            <ConfirmDialog
                title=format!("Delete the endpoint {url}?")
                message="Its queued deliveries and its log go with it. This cannot be undone.".to_owned()
                confirm_label="Delete endpoint"
                danger=true
                pending=delete.pending()
                on_confirm=move || { delete.dispatch(DeleteWebhook { id: id.clone() }); }
                on_cancel=move || confirming.set(None)
            />
        })}
    }
}

#[component]
fn Endpoint(
    endpoint: WebhookEndpointView,
    log: Vec<WebhookDeliveryView>,
    toggle: ServerAction<SetWebhookEnabled>,
    test: ServerAction<SendTestWebhook>,
    resend: ServerAction<ResendWebhook>,
    confirming: RwSignal<Option<(String, String)>>,
) -> impl IntoView {
    let (id, url, enabled) = (endpoint.id.clone(), endpoint.url.clone(), endpoint.enabled);
    let (toggle_id, test_id, delete_id) = (id.clone(), id.clone(), id.clone());
    view! {
        <section class="card webhook" data-endpoint-id=id.clone()>
            <div class="webhook-head">
                <div>
                    <h2 class="webhook-url"><code>{url.clone()}</code></h2>
                    <div class="badges">
                        {if enabled { view! { <Badge text="Enabled" tone="success"/> } } else { view! { <Badge text="Disabled" tone="muted"/> } }}
                        <span class="hint">{endpoint.events.join(", ")}</span>
                        <span class="hint"><code>{endpoint.hint.clone()}</code></span>
                    </div>
                </div>
                <div class="actions-cell">
                    <ActionForm action=test>
                        <input type="hidden" name="id" value=test_id/>
                        <button type="submit" class="small">"Send test event"</button>
                    </ActionForm>
                    <ActionForm action=toggle>
                        <input type="hidden" name="id" value=toggle_id/>
                        <input type="hidden" name="enabled" value=(!enabled).to_string()/>
                        <button type="submit" class="small">{if enabled { "Disable" } else { "Enable" }}</button>
                    </ActionForm>
                    <button type="button" class="small danger-text"
                        on:click=move |_| confirming.set(Some((delete_id.clone(), url.clone())))>
                        "Delete…"
                    </button>
                </div>
            </div>
            {if log.is_empty() {
                view! { <p class="hint">"No deliveries yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="data-table webhook-log">
                            <thead><tr>
                                <th scope="col">"Event"</th>
                                <th scope="col">"Status"</th>
                                <th scope="col">"Answer"</th>
                                <th scope="col">"Latency"</th>
                                <th scope="col">"Attempts"</th>
                                <th scope="col">"Queued"</th>
                                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                            </tr></thead>
                            <tbody>
                                {log.into_iter().map(|d| view! { <Delivery endpoint_id=id.clone() d resend/> }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn Delivery(endpoint_id: String, d: WebhookDeliveryView, resend: ServerAction<ResendWebhook>) -> impl IntoView {
    let status = match d.status.as_str() {
        "delivered" => view! { <Badge text="Delivered" tone="success"/> },
        "failed" => view! { <Badge text="Failed" tone="danger"/> },
        _ => view! { <Badge text="Retrying" tone="muted"/> },
    };
    let answer = match (d.last_status, &d.last_error) {
        (_, Some(error)) => error.clone(),
        (Some(code), None) => format!("HTTP {code}"),
        (None, None) => "…".to_owned(),
    };
    view! {
        <tr data-delivery-id=d.id.to_string() data-status=d.status.clone()>
            <td><code>{d.event_type.clone()}</code></td>
            <td>{status}{d.next_attempt_at.as_deref().map(|at| view! { <div class="hint">{format!("next try {}", display_time(at))}</div> })}</td>
            <td class="webhook-answer">{answer}</td>
            <td>{d.latency_ms.map(|ms| format!("{ms} ms")).unwrap_or_default()}</td>
            <td>{d.attempts}</td>
            <td class="muted">{display_time(&d.created_at)}</td>
            <td class="actions-cell">
                <ActionForm action=resend>
                    <input type="hidden" name="id" value=endpoint_id/>
                    <input type="hidden" name="delivery" value=d.id.to_string()/>
                    <button type="submit" class="small">"Resend"</button>
                </ActionForm>
            </td>
        </tr>
    }
}
