//! `/tokens`: the account's publish tokens.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    app::components::{EmptyState, Icon},
    model::AccountView,
};

/// The token list. Until the account has a token it explains what one is for.
#[component]
pub fn TokensPage() -> impl IntoView {
    let account = expect_context::<AccountView>();
    view! {
        <Title text="Tokens"/>
        <div class="page-header">
            <div>
                <h1>"Publish tokens"</h1>
                <p class="lede">"A publish token lets an encoder or the online broadcaster go live on your streams."</p>
            </div>
        </div>
        <EmptyState title="No publish tokens yet" icon=Icon::Key>
            <p>
                "Each token names the streams it may publish, and can be disabled or deleted at any time. "
                "Viewers will find your streams at "
                <code>{format!("/watch/{}/<stream name>", account.account_id)}</code>"."
            </p>
        </EmptyState>
    }
}
