//! `/live`: the account's streams that are on air, refreshed every two seconds, and the
//! connectivity self-check panel (`public/self-check.js` fills it once the page is hydrated).

use std::time::Duration;

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    app::{
        components::{error_text, Badge, EmptyState, Icon},
        server_fns::{live_streams, recording_paused},
    },
    model::{display_bitrate, display_duration, LiveSource, LiveStream},
};

/// How often the page asks for fresh figures.
pub const REFRESH: Duration = Duration::from_secs(2);

/// A signal that ticks every [`REFRESH`] in the browser (never on the server).
pub fn refresh_ticker() -> ReadSignal<u64> {
    let (tick, set_tick) = signal(0u64);
    Effect::new(move |_| {
        set_interval(move || set_tick.update(|t| *t += 1), REFRESH);
    });
    tick
}

#[component]
pub fn LivePage() -> impl IntoView {
    let tick = refresh_ticker();
    let streams = Resource::new(move || tick.get(), |_| live_streams());
    let paused = Resource::new(move || tick.get(), |_| recording_paused());
    view! {
        <Title text="Live"/>
        <div class="page-header">
            <div>
                <h1>"Live streams"</h1>
                <p class="lede">"Streams on air right now, with their sources and viewers. Updates by itself."</p>
            </div>
        </div>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                paused.await.ok().flatten().map(|why| view! { <div class="alert warning" role="status">{why}</div> })
            })}
        </Transition>
        <Transition fallback=|| view! { <p class="page-loading">"Loading live streams…"</p> }>
            {move || Suspend::new(async move {
                match streams.await {
                    Err(err) => view! { <div class="alert error" role="alert">{error_text(&err)}</div> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <EmptyState title="Nothing is live" icon=Icon::Broadcast>
                            <p>"Start publishing with one of your tokens and the stream shows up here."</p>
                        </EmptyState>
                    }.into_any(),
                    Ok(list) => view! {
                        <div class="table-wrap">
                            <table class="data-table live-table">
                                <thead>
                                    <tr>
                                        <th scope="col">"Stream"</th>
                                        <th scope="col">"Sources"</th>
                                        <th scope="col">"Viewers"</th>
                                        <th scope="col">"Bitrate"</th>
                                        <th scope="col">"Uptime"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {list.into_iter().map(|stream| view! { <LiveRow stream/> }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                }
            })}
        </Transition>
        <section id="self-check" class="card self-check" aria-label="Connectivity self-check">
            <p class="page-loading">"Loading the connectivity self-check…"</p>
        </section>
        <script type="module" src="/self-check.js" nonce=leptos::nonce::use_nonce()></script>
    }
}

#[component]
fn LiveRow(stream: LiveStream) -> impl IntoView {
    let id = format!("{}/{}", stream.account_id, stream.stream_name);
    let watch = format!("/watch/{id}");
    view! {
        <tr data-stream=stream.stream_name.clone()>
            <th scope="row">
                <a class="row-title" href=watch rel="external" target="_blank">{stream.stream_name.clone()}</a>
                <div class="badges">
                    <Badge text="Live" tone="live"/>
                    {stream.recording.then(|| view! { <Badge text="Rec" tone="live"/> })}
                </div>
                <div class="row-sub"><code>{id}</code></div>
            </th>
            <td>
                <ul class="source-list">
                    {stream.sources.into_iter().map(|source| view! { <SourceItem source/> }).collect_view()}
                </ul>
            </td>
            <td class="viewers-cell">
                {stream.viewers}
                {(!stream.viewers_by_pass.is_empty()).then(|| view! {
                    <ul class="viewers-by-pass" aria-label="Viewers by viewer token or link">
                        {stream.viewers_by_pass.into_iter().map(|p| view! {
                            <li><span class="muted">{p.name}</span>" "<strong>{p.viewers}</strong></li>
                        }).collect_view()}
                    </ul>
                })}
            </td>
            <td>{display_bitrate(stream.bitrate_bps)}</td>
            <td>{display_duration(stream.uptime_secs)}</td>
        </tr>
    }
}

#[component]
fn SourceItem(source: LiveSource) -> impl IntoView {
    let name = source.source_id.clone().unwrap_or_else(|| "main".to_owned());
    let codecs = source
        .tracks
        .iter()
        .map(|t| format!("{} {}", t.kind, t.codec.as_deref().unwrap_or("…")))
        .collect::<Vec<_>>()
        .join(" · ");
    view! {
        <li class="source-item">
            <strong>{name}</strong>
            {(!source.active).then(|| view! { <Badge text="Connecting" tone="muted"/> })}
            {source.recording.then(|| view! { <Badge text="Rec" tone="live"/> })}
            <span class="muted">" "{codecs}" · "{display_bitrate(source.bitrate_bps)}</span>
            {(source.layers.len() > 1).then(|| view! {
                <ul class="layers" aria-label="Simulcast layers">
                    {source.layers.iter().map(|l| view! { <li>{l.describe()}</li> }).collect_view()}
                </ul>
            })}
        </li>
    }
}
