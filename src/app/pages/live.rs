//! `/live`: the account's streams that are on air, refreshed every two seconds, each source with
//! its publisher's health and ten minutes of graphs (README "Live page"), and the
//! connectivity self-check panel (`public/self-check.js` fills it once the page is hydrated).

use std::time::Duration;

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    app::{
        components::{error_text, Badge, EmptyState, Icon},
        server_fns::{account_usage, live_streams, recording_paused},
    },
    model::{
        display_bitrate, display_duration, AccountUsage, LiveHealth, LiveSample, LiveSource, LiveStream, ViewerGroup,
    },
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
    let usage = Resource::new(move || tick.get(), |_| account_usage());
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
        <Transition fallback=|| ()>
            {move || Suspend::new(async move { usage.await.ok().map(|usage| view! { <Usage usage/> }) })}
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
                <ViewerGroups label="Viewers by viewer token or link" groups=stream.viewers_by_pass/>
                <ViewerGroups label="Viewers by site" groups=stream.viewers_by_site/>
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
            <p class="health muted" aria-label="Publisher health">{describe_health(&source.health)}</p>
            <SourceGraphs history=source.history/>
        </li>
    }
}

#[component]
fn ViewerGroups(label: &'static str, groups: Vec<ViewerGroup>) -> impl IntoView {
    (!groups.is_empty()).then(|| {
        view! {
            <ul class="viewer-groups" aria-label=label>
                {groups.into_iter().map(|g| view! {
                    <li><span class="muted">{g.name}</span>" "<strong>{g.viewers}</strong></li>
                }).collect_view()}
            </ul>
        }
    })
}

/// `RTT 45 ms · loss 0.2 % · 12 NACKs · 3 keyframe requests`; "—" for what is not known yet.
fn describe_health(health: &LiveHealth) -> String {
    let rtt = health.rtt_ms.map_or("—".to_owned(), |ms| format!("{ms} ms"));
    let loss = health.loss_percent.map_or("—".to_owned(), |p| format!("{p:.1} %"));
    format!("RTT {rtt} · loss {loss} · {} NACKs · {} keyframe requests", health.nacks, health.keyframe_requests)
}

/// The source's last ten minutes: bitrate, frame rate, resolution (height) and viewers.
#[component]
fn SourceGraphs(history: Vec<LiveSample>) -> impl IntoView {
    let last = history.last().copied();
    last.map(|last| {
        let resolution = if last.height > 0 { format!("{}×{}", last.width, last.height) } else { "—".to_owned() };
        let series = |f: fn(&LiveSample) -> f64| history.iter().map(|s| (s.at, f(s))).collect::<Vec<_>>();
        view! {
            <div class="graphs" data-samples=history.len()>
                <Sparkline label="Bitrate" end=last.at points=series(|s| s.bitrate_bps as f64) now=display_bitrate(last.bitrate_bps)/>
                <Sparkline label="Frame rate" end=last.at points=series(|s| f64::from(s.fps)) now=format!("{} fps", last.fps)/>
                <Sparkline label="Resolution" end=last.at points=series(|s| f64::from(s.height)) now=resolution/>
                <Sparkline label="Viewers" end=last.at points=series(|s| s.viewers as f64) now=last.viewers.to_string()/>
            </div>
        }
    })
}

/// Width of the Live page graphs' window, in seconds.
const WINDOW_SECS: i64 = 600;

/// A small line of `(at, value)` points over the `window_secs` before `end` (ten minutes unless
/// said), scaled to its maximum.
#[component]
pub fn Sparkline(
    label: &'static str,
    end: i64,
    points: Vec<(i64, f64)>,
    now: String,
    #[prop(default = WINDOW_SECS)] window_secs: i64,
) -> impl IntoView {
    let (width, height) = (120.0, 28.0);
    let max = points.iter().map(|(_, v)| *v).fold(0.0, f64::max).max(1.0);
    let line = points
        .iter()
        .map(|(at, v)| {
            let x = (width - (end - at) as f64 / window_secs as f64 * width).clamp(0.0, width);
            let y = height - 1.0 - v / max * (height - 2.0);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ");
    view! {
        <figure class="spark">
            <svg viewBox="0 0 120 28" width="120" height="28" role="img"
                aria-label=format!("{label}, last {} minutes", window_secs / 60)>
                <polyline points=line fill="none" stroke="currentColor" stroke-width="1.5" stroke-linejoin="round"/>
            </svg>
            <figcaption>{label}" "<strong>{now}</strong></figcaption>
        </figure>
    }
}

/// The account's use against its limits: feeds, viewers, egress ("of" only where there is a
/// limit); a limit reached is marked, since the next offer past it is refused.
#[component]
fn Usage(usage: AccountUsage) -> impl IntoView {
    let limits = usage.limits;
    let part = |now: String, max: Option<String>, what: &'static str, full: bool| {
        let text = match max {
            Some(max) => format!("{now} of {max} {what}"),
            None => format!("{now} {what}"),
        };
        view! { <span class=if full { "usage full" } else { "usage" }>{text}</span> }
    };
    let mbps = |bps: f64| format!("{:.1}", bps / 1e6);
    let egress_full = limits.max_egress_mbps.is_some_and(|max| usage.egress_bps as f64 >= max * 1e6);
    view! {
        <p class="account-usage hint" data-testid="account-usage">
            "Your account now: "
            {part(usage.publishers.to_string(), limits.max_publishers.map(|n| n.to_string()), "feeds",
                limits.max_publishers.is_some_and(|max| usage.publishers >= max))}
            " · "
            {part(usage.viewers.to_string(), limits.max_viewers.map(|n| n.to_string()), "viewers",
                limits.max_viewers.is_some_and(|max| usage.viewers >= max))}
            " · "
            {part(mbps(usage.egress_bps as f64), limits.max_egress_mbps.map(|m| format!("{m}")), "Mbit/s to viewers", egress_full)}
        </p>
    }
}
