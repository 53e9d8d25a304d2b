//! `/admin`: the operator's page (README "Sign-up and the operator"). Everyone else gets the 404
//! of a page that does not exist.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    app::{
        components::{error_text, Badge, ConfirmDialog, FormError},
        pages::{
            live::{refresh_ticker, Sparkline},
            not_found::NotFound,
        },
        server_fns::{
            admin_instance, list_admin_accounts, list_invites, CreateInvite, DeleteAdminAccount, SetAccountLimits,
            UpdateAdminAccount, WithdrawInvite,
        },
    },
    model::{
        display_bitrate, display_time, AccountLimitsView, AccountView, AdminAccountView, InstanceView, InviteView,
    },
};

#[component]
pub fn AdminPage() -> impl IntoView {
    let operator = use_context::<AccountView>().is_some_and(|account| account.operator);
    if !operator {
        return view! { <NotFound/> }.into_any();
    }
    view! {
        <Title text="Admin"/>
        <div class="page-header">
            <div>
                <h1>"Admin"</h1>
                <p class="lede">"This server's accounts and who may join it."</p>
            </div>
        </div>
        <Instance/>
        <Accounts/>
        <Invites/>
    }
    .into_any()
}

/// The instance now: what is live, the recordings disk, the limits, and the last hour.
#[component]
fn Instance() -> impl IntoView {
    let tick = refresh_ticker();
    let instance = Resource::new(move || tick.get(), |_| admin_instance());
    view! {
        <section class="card" aria-labelledby="instance-title">
            <h2 id="instance-title">"This server now"</h2>
            <Transition fallback=|| view! { <p class="page-loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match instance.await {
                        Err(err) => view! { <div class="alert error" role="alert">{error_text(&err)}</div> }.into_any(),
                        Ok(instance) => view! { <InstanceFigures instance/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn InstanceFigures(instance: InstanceView) -> impl IntoView {
    let limits = instance.limits;
    let or_none = |v: Option<String>| v.unwrap_or_else(|| "no limit".to_owned());
    let recordings = instance.recordings.map(|disk| {
        let gib = |bytes: u64| format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64);
        let text = format!(
            "Recordings: {} kept, {} free on their disk (at least {} kept free){}",
            gib(disk.used_bytes),
            gib(disk.free_bytes),
            gib(disk.min_free_bytes),
            if disk.low { " — below it: nothing is recorded now" } else { "" },
        );
        view! { <p data-testid="recordings-disk">{text}</p> }
    });
    let end = instance.history.last().map_or(0, |s| s.at);
    let viewers: Vec<(i64, f64)> = instance.history.iter().map(|s| (s.at, f64::from(s.viewers))).collect();
    let egress: Vec<(i64, f64)> = instance.history.iter().map(|s| (s.at, s.egress_bps as f64)).collect();
    view! {
        <p class="instance-figures" data-testid="instance-now">
            {format!(
                "{} live stream(s), {} feed(s), {} viewer(s), {} to viewers",
                instance.streams,
                instance.publishers,
                instance.viewers,
                display_bitrate(instance.egress_bps)
            )}
        </p>
        {(!instance.history.is_empty()).then(|| view! {
            <div class="graphs">
                <Sparkline label="Viewers" end points=viewers now=instance.viewers.to_string() window_secs=3600/>
                <Sparkline label="To viewers" end points=egress now=display_bitrate(instance.egress_bps) window_secs=3600/>
            </div>
        })}
        {recordings}
        <p class="hint">
            {format!(
                "Limits: {} viewers in all, {} per stream, {} feeds per stream, {} per token; per account (unless set \
                 below): {} feeds, {} viewers, {} Mbit/s.",
                limits.max_viewers,
                limits.max_viewers_per_stream,
                limits.max_sources_per_stream,
                limits.max_publishers_per_token,
                or_none(limits.account.max_publishers.map(|n| n.to_string())),
                or_none(limits.account.max_viewers.map(|n| n.to_string())),
                or_none(limits.account.max_egress_mbps.map(|m| m.to_string())),
            )}
        </p>
    }
}

/// Every account: what it has, what it does now, and the operator's switches.
#[component]
fn Accounts() -> impl IntoView {
    let update = ServerAction::<UpdateAdminAccount>::new();
    let delete = ServerAction::<DeleteAdminAccount>::new();
    let set_limits = ServerAction::<SetAccountLimits>::new();
    // Live streams and viewers change by themselves: refresh like the Live page.
    let tick = refresh_ticker();
    let accounts = Resource::new(
        move || (tick.get(), update.version().get(), delete.version().get(), set_limits.version().get()),
        |_| list_admin_accounts(),
    );
    let confirming = RwSignal::new(None::<(String, String)>);
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            confirming.set(None);
        }
    });
    let error = Signal::derive(move || {
        let failed = |e: Option<Result<(), ServerFnError>>| e.and_then(|r| r.err());
        failed(update.value().get())
            .or_else(|| failed(delete.value().get()))
            .or_else(|| failed(set_limits.value().get()))
            .map(|e| error_text(&e))
    });
    view! {
        <section class="card" aria-labelledby="accounts-title">
            <h2 id="accounts-title">"Accounts"</h2>
            <p class="hint">
                "Disabling an account ends its live feeds and sessions and refuses its tokens and API keys until it is
                enabled again; deleting it removes everything of it. Operators can do neither to each other: take the
                role away first (one operator always remains)."
            </p>
            <FormError message=error/>
            <Transition fallback=|| view! { <p class="page-loading">"Loading accounts…"</p> }>
                {move || Suspend::new(async move {
                    match accounts.await {
                        Err(err) => view! { <div class="alert error" role="alert">{error_text(&err)}</div> }.into_any(),
                        Ok(list) => view! { <AccountTable list update set_limits confirming/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        {move || confirming.get().map(|(id, email)| view! {
            <ConfirmDialog
                title=format!("Delete the account {email}?")
                message="Its tokens, API keys, recordings (files included) and sessions go with it; its live feeds stop. \
                         This cannot be undone.".to_owned()
                confirm_label="Delete account"
                danger=true
                pending=delete.pending()
                on_confirm=move || { delete.dispatch(DeleteAdminAccount { account_id: id.clone() }); }
                on_cancel=move || confirming.set(None)
            />
        })}
    }
}

#[component]
fn AccountTable(
    list: Vec<AdminAccountView>,
    update: ServerAction<UpdateAdminAccount>,
    set_limits: ServerAction<SetAccountLimits>,
    confirming: RwSignal<Option<(String, String)>>,
) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="data-table admin-accounts">
                <thead><tr>
                    <th scope="col">"Account"</th>
                    <th scope="col">"Created"</th>
                    <th scope="col">"Last login"</th>
                    <th scope="col">"Tokens"</th>
                    <th scope="col">"Live now"</th>
                    <th scope="col">"Last 24 h"</th>
                    <th scope="col">"Limits"</th>
                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                </tr></thead>
                <tbody>
                    {list.into_iter().map(|account| {
                        let id = account.account_id.clone();
                        let (disable_id, role_id, delete_id, email) = (id.clone(), id.clone(), id.clone(), account.email.clone());
                        let live = match (account.live_streams, account.viewers) {
                            (0, _) => "—".to_owned(),
                            (streams, viewers) => format!(
                                "{streams} stream(s), {viewers} viewer(s), {:.1} Mbit/s",
                                account.egress_bps as f64 / 1e6
                            ),
                        };
                        let limits_id = id.clone();
                        view! {
                            <tr data-account-id=id.clone()>
                                <td>
                                    {account.email.clone()}" "
                                    {account.operator.then(|| view! { <Badge text="Operator" tone="success"/> })}
                                    {account.disabled.then(|| view! { <Badge text="Disabled" tone="danger"/> })}
                                    <div class="hint">"ID "<code>{id.clone()}</code></div>
                                </td>
                                <td>{display_time(&account.created_at)}</td>
                                <td>{account.last_login_at.as_deref().map(display_time).unwrap_or_else(|| "never".to_owned())}</td>
                                <td>{account.tokens}</td>
                                <td>{live}</td>
                                <td>{format!("{} in, {} out", bytes(account.published_bytes_24h), bytes(account.viewed_bytes_24h))}</td>
                                <td><Limits account_id=limits_id limits=account.limits own=account.own_limits set_limits/></td>
                                <td class="actions-cell">
                                    {(!account.operator).then(|| view! {
                                        <ActionForm action=update>
                                            <input type="hidden" name="account_id" value=disable_id/>
                                            <input type="hidden" name="disabled" value=(!account.disabled).to_string()/>
                                            <button type="submit" class="small">
                                                {if account.disabled { "Enable" } else { "Disable" }}
                                            </button>
                                        </ActionForm>
                                    })}
                                    <ActionForm action=update>
                                        <input type="hidden" name="account_id" value=role_id/>
                                        <input type="hidden" name="operator" value=(!account.operator).to_string()/>
                                        <button type="submit" class="small">
                                            {if account.operator { "Remove operator" } else { "Make operator" }}
                                        </button>
                                    </ActionForm>
                                    {(!account.operator).then(|| view! {
                                        <button type="button" class="small danger-text"
                                            on:click=move |_| confirming.set(Some((delete_id.clone(), email.clone())))>
                                            "Delete…"
                                        </button>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// Invite links: make one (shown once), see which were used, withdraw the others.
#[component]
fn Invites() -> impl IntoView {
    let create = ServerAction::<CreateInvite>::new();
    let withdraw = ServerAction::<WithdrawInvite>::new();
    let invites = Resource::new(move || (create.version().get(), withdraw.version().get()), |_| list_invites());
    let created = Memo::new(move |_| create.value().get().and_then(|r| r.ok()));
    let error = Signal::derive(move || {
        let failed = |e: Option<Result<(), ServerFnError>>| e.and_then(|r| r.err());
        failed(create.value().get().map(|r| r.map(|_| ())))
            .or_else(|| failed(withdraw.value().get()))
            .map(|e| error_text(&e))
    });
    view! {
        <section class="card" aria-labelledby="invites-title">
            <h2 id="invites-title">"Invites"</h2>
            <p class="hint">
                "With " <code>"--signup invite"</code> " (the default) a new account needs an invite link. Each link
                works once, until it expires."
            </p>
            {move || created.get().map(|made| view! {
                <div class="secret-reveal" role="status">
                    <h3>"Invite link"</h3>
                    <p class="secret-warning">
                        <strong>"Copy it now: it is not shown again."</strong>
                        {format!(" It works once, until {}.", display_time(&made.expires_at))}
                    </p>
                    <div class="secret-box"><code class="secret-value" data-testid="invite-link">{made.url}</code></div>
                </div>
            })}
            <FormError message=error/>
            <ActionForm action=create attr:class="inline-form">
                <div class="field">
                    <label for="invite-note">"For"</label>
                    <input id="invite-note" name="note" type="text" maxlength="200" placeholder="who it is for (optional)"/>
                </div>
                <div class="field">
                    <label for="invite-days">"Works for"</label>
                    <select id="invite-days" name="days">
                        <option value="1">"1 day"</option>
                        <option value="7" selected>"7 days"</option>
                        <option value="30">"30 days"</option>
                    </select>
                </div>
                <button type="submit" class="primary" disabled=move || create.pending().get()>"Make invite link"</button>
            </ActionForm>
            <Transition fallback=|| view! { <p class="page-loading">"Loading invites…"</p> }>
                {move || Suspend::new(async move {
                    match invites.await {
                        Err(err) => view! { <div class="alert error" role="alert">{error_text(&err)}</div> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <p class="hint">"No invites yet."</p> }.into_any(),
                        Ok(list) => view! { <InviteTable list withdraw/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn InviteTable(list: Vec<InviteView>, withdraw: ServerAction<WithdrawInvite>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="data-table invites">
                <thead><tr>
                    <th scope="col">"For"</th>
                    <th scope="col">"Code"</th>
                    <th scope="col">"State"</th>
                    <th scope="col">"Made"</th>
                    <th scope="col">"Expires"</th>
                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                </tr></thead>
                <tbody>
                    {list.into_iter().map(|invite| {
                        let state = match invite.state.as_str() {
                            "used" => view! { <Badge text="Used" tone="success"/> },
                            "expired" => view! { <Badge text="Expired" tone="muted"/> },
                            _ => view! { <Badge text="Open" tone="neutral"/> },
                        };
                        let used_by = invite.used_by.clone().map(|email| format!(" by {email}"));
                        let id = invite.id.clone();
                        view! {
                            <tr data-invite-id=invite.id.clone()>
                                <td>{invite.note.clone()}</td>
                                <td><code>{invite.hint.clone()}</code></td>
                                <td>{state}<span class="hint">{used_by}</span></td>
                                <td>{display_time(&invite.created_at)}</td>
                                <td>{display_time(&invite.expires_at)}</td>
                                <td class="actions-cell">
                                    <ActionForm action=withdraw>
                                        <input type="hidden" name="id" value=id/>
                                        <button type="submit" class="small danger-text">
                                            {if invite.state == "open" { "Withdraw" } else { "Remove" }}
                                        </button>
                                    </ActionForm>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// An account's limits, and a form to set them (empty: the server's default).
#[component]
fn Limits(
    account_id: String,
    limits: AccountLimitsView,
    own: AccountLimitsView,
    set_limits: ServerAction<SetAccountLimits>,
) -> impl IntoView {
    let show = |value: Option<String>, set: bool| match (value, set) {
        (Some(v), true) => v,
        (Some(v), false) => format!("{v} (default)"),
        (None, _) => "no limit".to_owned(),
    };
    let summary = format!(
        "{} feeds · {} viewers · {} Mbit/s",
        show(limits.max_publishers.map(|n| n.to_string()), own.max_publishers.is_some()),
        show(limits.max_viewers.map(|n| n.to_string()), own.max_viewers.is_some()),
        show(limits.max_egress_mbps.map(|m| m.to_string()), own.max_egress_mbps.is_some()),
    );
    let value = |v: Option<String>| v.unwrap_or_default();
    view! {
        <details class="limits">
            <summary>{summary}</summary>
            <ActionForm action=set_limits attr:class="inline-form">
                <input type="hidden" name="account_id" value=account_id/>
                <label>"Feeds " <input name="max_publishers" type="number" min="1" size="5"
                    value=value(own.max_publishers.map(|n| n.to_string()))/></label>
                <label>"Viewers " <input name="max_viewers" type="number" min="1" size="7"
                    value=value(own.max_viewers.map(|n| n.to_string()))/></label>
                <label>"Mbit/s " <input name="max_egress_mbps" type="number" min="0.1" step="0.1" size="6"
                    value=value(own.max_egress_mbps.map(|m| m.to_string()))/></label>
                <button type="submit" class="small">"Save limits"</button>
                <span class="hint">"Empty: the server's default."</span>
            </ActionForm>
        </details>
    }
}

/// Bytes as a person reads them: `0 B`, `12.3 MB`, `4.5 GB` (decimal units, as network traffic
/// is counted).
fn bytes(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1} GB", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} kB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}
