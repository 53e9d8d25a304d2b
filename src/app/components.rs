//! Small building blocks shared by the pages.

use leptos::prelude::*;

/// The ferrocast wordmark with its signal glyph.
#[component]
pub fn Brand() -> impl IntoView {
    view! {
        <span class="brand">
            <svg class="brand-mark" viewBox="0 0 24 24" aria-hidden="true">
                <circle cx="12" cy="12" r="3.2"/>
                <path d="M6.3 6.3a8 8 0 0 0 0 11.4M17.7 6.3a8 8 0 0 1 0 11.4" fill="none" stroke-width="2" stroke-linecap="round"/>
            </svg>
            <span class="brand-name">"ferrocast"</span>
        </span>
    }
}

/// A password input with a show/hide button (the button only works once the page is hydrated).
#[component]
pub fn PasswordField(
    /// Form field name and element id.
    name: &'static str,
    /// Visible label.
    label: &'static str,
    /// `current-password` on login, `new-password` on sign-up.
    autocomplete: &'static str,
    /// Text under the field, tied to it with `aria-describedby`.
    #[prop(optional)]
    hint: Option<&'static str>,
) -> impl IntoView {
    let visible = RwSignal::new(false);
    let hint_id = format!("{name}-hint");
    view! {
        <div class="field">
            <label for=name>{label}</label>
            <div class="password-input">
                <input
                    id=name
                    name=name
                    type=move || if visible.get() { "text" } else { "password" }
                    autocomplete=autocomplete
                    required
                    minlength=if autocomplete == "new-password" { Some("8") } else { None }
                    aria-describedby=hint.map(|_| hint_id.clone())
                />
                <button
                    type="button"
                    class="ghost small reveal"
                    aria-controls=name
                    aria-pressed=move || visible.get().to_string()
                    on:click=move |_| visible.update(|v| *v = !*v)
                >
                    {move || if visible.get() { "Hide" } else { "Show" }}
                </button>
            </div>
            {hint.map(|text| view! { <p class="hint" id=format!("{name}-hint")>{text}</p> })}
        </div>
    }
}

/// A red banner for a failed form submission; announced to screen readers.
#[component]
pub fn FormError(#[prop(into)] message: Signal<Option<String>>) -> impl IntoView {
    move || {
        message.get().map(|text| {
            view! { <div class="alert error" role="alert">{text}</div> }
        })
    }
}

/// Line icons drawn inline (no icon font, no emoji: both depend on what the visitor has installed).
#[derive(Clone, Copy, Debug)]
pub enum Icon {
    Key,
    Broadcast,
}

impl Icon {
    fn path(self) -> &'static str {
        match self {
            Icon::Key => "M7 15a3.5 3.5 0 1 1 0-7 3.5 3.5 0 0 1 0 7zM10.5 11.5H21M18 11.5v3M15 11.5v2.5",
            Icon::Broadcast => "M12 14a2 2 0 1 0 0-4 2 2 0 0 0 0 4zM7.8 16.2a6 6 0 0 1 0-8.4M16.2 7.8a6 6 0 0 1 0 8.4M4.9 19.1a10 10 0 0 1 0-14.2M19.1 4.9a10 10 0 0 1 0 14.2",
        }
    }
}

/// The friendly block shown where a list has nothing in it yet.
#[component]
pub fn EmptyState(title: &'static str, icon: Icon, children: Children) -> impl IntoView {
    view! {
        <section class="empty-state">
            <svg class="empty-icon" viewBox="0 0 24 24" aria-hidden="true">
                <path d=icon.path() fill="none" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round"/>
            </svg>
            <h2>{title}</h2>
            {children()}
        </section>
    }
}

/// Turns a server function's error into the sentence to show.
pub fn error_text(err: &leptos::server_fn::ServerFnError) -> String {
    use leptos::server_fn::ServerFnError;
    match err {
        ServerFnError::ServerError(message) => message.clone(),
        ServerFnError::Request(_) => "the server could not be reached; check your connection and try again".to_owned(),
        other => other.to_string(),
    }
}

/// A modal question with a cancel and a confirm button; `on_confirm` runs on confirm.
/// Escape and the cancel button call `on_cancel`.
#[component]
pub fn ConfirmDialog(
    title: String,
    message: String,
    confirm_label: &'static str,
    #[prop(optional)] danger: bool,
    #[prop(into)] pending: Signal<bool>,
    on_confirm: impl Fn() + Send + Sync + 'static,
    on_cancel: impl Fn() + Send + Sync + Clone + 'static,
) -> impl IntoView {
    let cancel = on_cancel.clone();
    view! {
        <div class="dialog-backdrop" on:click=move |_| on_cancel()>
            <div
                class="dialog"
                role="alertdialog"
                aria-modal="true"
                aria-labelledby="dialog-title"
                aria-describedby="dialog-message"
                on:click=|ev| ev.stop_propagation()
            >
                <h2 id="dialog-title">{title}</h2>
                <p id="dialog-message">{message}</p>
                <div class="dialog-actions">
                    <button type="button" on:click=move |_| cancel()>"Cancel"</button>
                    <button
                        type="button"
                        class=if danger { "danger" } else { "primary" }
                        autofocus
                        disabled=move || pending.get()
                        on:click=move |_| on_confirm()
                    >
                        {confirm_label}
                    </button>
                </div>
            </div>
        </div>
    }
}

/// A secret shown once, with a copy button and the warning that it will not be shown again.
#[component]
pub fn SecretReveal(secret: String, what: &'static str) -> impl IntoView {
    let copied = RwSignal::new(false);
    let to_copy = secret.clone();
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(window) = web_sys::window() {
            let _ = window.navigator().clipboard().write_text(&to_copy);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &to_copy;
        copied.set(true);
    };
    view! {
        <section class="secret-reveal" aria-labelledby="secret-title">
            <h2 id="secret-title">{format!("Your {what} secret")}</h2>
            <p class="secret-warning">
                <strong>"Copy it now: you will not see this secret again."</strong>
                " Only a hash is stored. If you lose it, rotate to get a new one."
            </p>
            <div class="secret-box">
                <code class="secret-value" data-testid="secret">{secret}</code>
                <button type="button" class="small" on:click=copy>
                    {move || if copied.get() { "Copied" } else { "Copy" }}
                </button>
            </div>
        </section>
    }
}

/// Small coloured labels for a token's flags.
#[component]
pub fn Badge(text: &'static str, #[prop(default = "neutral")] tone: &'static str) -> impl IntoView {
    view! { <span class=format!("badge {tone}")>{text}</span> }
}

/// A row's quick-action menu: a "⋯" button and a panel of actions. Escape or a click outside
/// closes it; the owner closes it too when an action opens something else.
#[component]
pub fn RowMenu(
    /// Accessible name of the button, e.g. "Actions for Studio A".
    label: String,
    open: RwSignal<bool>,
    children: ChildrenFn,
) -> impl IntoView {
    view! {
        <div
            class="row-menu"
            on:keydown=move |ev| {
                if ev.key() == "Escape" {
                    open.set(false);
                }
            }
        >
            <button
                type="button"
                class="menu-toggle"
                aria-haspopup="menu"
                aria-expanded=move || open.get().to_string()
                aria-label=label
                on:click=move |_| open.update(|o| *o = !*o)
            >
                "⋯"
            </button>
            <Show when=move || open.get()>
                <div class="menu-scrim" on:click=move |_| open.set(false)></div>
                <div class="menu-panel" role="menu">{children()}</div>
            </Show>
        </div>
    }
}
