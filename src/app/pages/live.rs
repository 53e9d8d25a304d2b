//! `/live`: the account's streams that are on air.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::app::components::{EmptyState, Icon};

/// Live streams with their viewers; empty until something is published.
#[component]
pub fn LivePage() -> impl IntoView {
    view! {
        <Title text="Live"/>
        <div class="page-header">
            <div>
                <h1>"Live streams"</h1>
                <p class="lede">"Streams on air right now, with their sources and viewers."</p>
            </div>
        </div>
        <EmptyState title="Nothing is live" icon=Icon::Broadcast>
            <p>"Start publishing with one of your tokens and the stream shows up here."</p>
        </EmptyState>
    }
}
