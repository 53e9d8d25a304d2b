//! `/tokens/{id}/broadcast`: the online broadcaster. The page is a frame; `public/broadcaster.js`
//! (camera, microphone, screen, mixer, settings, share panel) builds the inside once the page is
//! hydrated, and publishes with a short-lived grant from `POST /api/v1/tokens/{id}/grants`, so the
//! token's secret never reaches the browser.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn BroadcastPage() -> impl IntoView {
    let params = use_params_map();
    let token_id = params.read_untracked().get("id").unwrap_or_default();
    view! {
        <Title text="Broadcast"/>
        <div id="broadcaster" class="broadcaster" data-token-id=token_id>
            <p class="page-loading">"Loading the broadcaster…"</p>
            <noscript><p class="alert error">"The broadcaster needs JavaScript."</p></noscript>
        </div>
        <script type="module" src="/broadcaster.js" nonce=leptos::nonce::use_nonce()></script>
    }
}
