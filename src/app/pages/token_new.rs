//! `/tokens/new`: create a publish token, then show its secret once.

use leptos::prelude::*;
use leptos_meta::Title;

use super::token_form::TokenFields;
use crate::app::{
    components::{error_text, FormError, SecretReveal},
    server_fns::{site_info, CreateToken},
};

#[component]
pub fn NewTokenPage() -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let info = Resource::new(|| (), |_| site_info());
    let error = Signal::derive(move || create.value().get().and_then(|r| r.err()).map(|e| error_text(&e)));
    // Only success swaps the form out: an error keeps what the user typed.
    let created = Memo::new(move |_| create.value().get().and_then(|r| r.ok()));
    view! {
        <Title text="Create token"/>
        <nav class="breadcrumbs" aria-label="Breadcrumb"><a href="/tokens">"Tokens"</a>" / New"</nav>
        {move || match created.get() {
            Some(created) => {
                let settings = format!("/tokens/{}", created.token.id);
                let streams = created.token.streams.clone();
                view! {
                    <h1>{format!("Token “{}” created", created.token.label)}</h1>
                    <SecretReveal secret=created.secret.clone() what="publish token"/>
                    <Suspense fallback=|| ()>
                        {move || {
                            let streams = streams.clone();
                            Suspend::new(async move {
                                info.await.ok().map(|info| view! {
                                    <section class="card">
                                        <h2>"Publish with it"</h2>
                                        <p>"Paste this into a WHIP encoder (OBS, GStreamer, a browser) with the secret as its bearer token:"</p>
                                        <ul class="url-list">
                                            {streams.iter().map(|s| view! {
                                                <li><code>{format!("{}/whip/{s}", info.public_url)}</code></li>
                                            }).collect_view()}
                                        </ul>
                                    </section>
                                })
                            })
                        }}
                    </Suspense>
                    <div class="form-actions">
                        <a class="button primary" href=settings>"Token settings"</a>
                        <a class="button" href="/tokens">"Back to tokens"</a>
                    </div>
                }.into_any()
            }
            None => view! {
                <h1>"Create a publish token"</h1>
                <div class="card narrow">
                    <FormError message=error/>
                    <ActionForm action=create attr:class="stack">
                        <TokenFields token=None/>
                        <div class="form-actions">
                            <button type="submit" class="primary" disabled=move || create.pending().get()>
                                {move || if create.pending().get() { "Creating…" } else { "Create token" }}
                            </button>
                            <a class="button" href="/tokens">"Cancel"</a>
                        </div>
                    </ActionForm>
                </div>
            }.into_any(),
        }}
    }
}
