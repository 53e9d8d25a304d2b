//! The fields shared by the create and settings forms of a publish token.

use leptos::prelude::*;

use crate::model::{datetime_local_utc, TokenView};

/// Label, stream rows (add/remove, or "any stream"), flags, expiry and origins, named
/// `form[...]` for the `TokenForm` server-function argument.
#[component]
pub fn TokenFields(
    /// The token being edited, or `None` on the create form.
    token: Option<TokenView>,
) -> impl IntoView {
    let editing = token.is_some();
    let token = token.unwrap_or_else(|| TokenView {
        id: String::new(),
        label: String::new(),
        streams: Vec::new(),
        enabled: true,
        record: false,
        multisource: false,
        expires_at: None,
        allowed_origins: None,
        embed_origins: None,
        secure_viewer: false,
        created_at: String::new(),
        updated_at: String::new(),
        last_used_at: None,
        hint: String::new(),
    });
    let any_stream = RwSignal::new(token.allows_any_stream());
    let mut initial: Vec<String> = token.streams.iter().filter(|s| *s != "*").cloned().collect();
    if initial.is_empty() {
        initial.push(String::new());
    }
    let next_key = StoredValue::new(initial.len());
    // Each row: a stable key for the list, and its value.
    let rows = RwSignal::new(initial.into_iter().enumerate().collect::<Vec<(usize, String)>>());
    let add_row = move |_| {
        let key = next_key.get_value();
        next_key.set_value(key + 1);
        rows.update(|r| r.push((key, String::new())));
    };
    let origins = token.allowed_origins.clone().unwrap_or_default().join("\n");
    let embed_origins = token.embed_origins.clone().unwrap_or_default().join("\n");
    let expires = token.expires_at.as_deref().map(datetime_local_utc).unwrap_or_default();

    view! {
        <div class="field">
            <label for="token-label">"Label"</label>
            <input id="token-label" name="form[label]" type="text" required maxlength="128" value=token.label.clone()
                placeholder="Studio A encoder"/>
        </div>

        <fieldset class="field">
            <legend>"Stream names"</legend>
            <p class="hint" id="streams-hint">
                "Exact names (" <code>"main"</code> "), prefixes ending in * (" <code>"cam-*"</code>
                "). Letters, digits, _ - . and up to 64 characters."
            </p>
            <label class="check">
                <input type="checkbox" name="form[any_stream]" prop:checked=move || any_stream.get()
                    checked=token.allows_any_stream()
                    on:change=move |ev| any_stream.set(event_target_checked(&ev))/>
                " Allow any stream name"
            </label>
            <div class="stream-rows" class:muted-block=move || any_stream.get()>
                <For each=move || rows.get() key=|(key, _)| *key let:((key, value))>
                    <div class="stream-row">
                        <input
                            type="text"
                            aria-label="Stream name"
                            aria-describedby="streams-hint"
                            name=move || {
                                let position = rows.with(|r| r.iter().position(|(k, _)| *k == key).unwrap_or(0));
                                format!("form[streams][{position}]")
                            }
                            value=value.clone()
                            pattern="[A-Za-z0-9_.\\-]{1,64}\\*?"
                            placeholder="stream name"
                            on:input=move |ev| {
                                let text = event_target_value(&ev);
                                rows.update(|r| if let Some(row) = r.iter_mut().find(|(k, _)| *k == key) { row.1 = text; });
                            }
                        />
                        <button
                            type="button"
                            class="ghost small"
                            aria-label="Remove this stream name"
                            disabled=move || rows.with(|r| r.len() <= 1)
                            on:click=move |_| rows.update(|r| r.retain(|(k, _)| *k != key))
                        >
                            "Remove"
                        </button>
                    </div>
                </For>
                <button type="button" class="small" on:click=add_row>"+ Add stream name"</button>
            </div>
            {move || any_stream.get().then(|| view! {
                <p class="hint">"Any stream name is allowed; the names above are kept but have no effect while this is on."</p>
            })}
        </fieldset>

        <fieldset class="field">
            <legend>"Options"</legend>
            {editing.then(|| view! {
                <label class="check">
                    <input type="checkbox" name="form[enabled]" checked=token.enabled/>
                    " Enabled " <span class="hint">"(disabling stops new publishes; live feeds keep running)"</span>
                </label>
            })}
            <label class="check">
                <input type="checkbox" name="form[record]" checked=token.record/>
                " Record " <span class="hint">"(streams published with this token are recorded)"</span>
            </label>
            <label class="check">
                <input type="checkbox" name="form[multisource]" checked=token.multisource/>
                " Multisource " <span class="hint">"(several feeds per stream, told apart by source ID)"</span>
            </label>
            <label class="check">
                <input type="checkbox" name="form[secure_viewer]" checked=token.secure_viewer/>
                " Secure viewer " <span class="hint">"(watching this token's streams needs a viewer token)"</span>
            </label>
        </fieldset>

        <div class="field">
            <label for="token-expires">"Expires (UTC, optional)"</label>
            <input id="token-expires" name="form[expires_utc]" type="datetime-local" value=expires/>
        </div>

        <div class="field">
            <label for="token-origins">"Allowed origins (optional)"</label>
            <textarea id="token-origins" name="form[allowed_origins]" rows="3" aria-describedby="origins-hint"
                placeholder="https://studio.example.com">{origins}</textarea>
            <p class="hint" id="origins-hint">
                "One per line. When set, browsers may publish with this token only from these sites. Leave empty for any."
            </p>
        </div>

        <div class="field">
            <label for="token-embed-origins">"Embed only on these sites (optional)"</label>
            <textarea id="token-embed-origins" name="form[embed_origins]" rows="3" aria-describedby="embed-origins-hint"
                placeholder="https://www.example.com">{embed_origins}</textarea>
            <p class="hint" id="embed-origins-hint">
                "One per line. When set, the viewer of this token's streams can be embedded only on these sites, and web pages elsewhere cannot play them; the viewer link still works. Leave empty for any site."
            </p>
        </div>
    }
}
