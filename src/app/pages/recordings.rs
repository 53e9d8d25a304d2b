//! `/recordings`: the account's recordings, newest first, filtered by stream with `?stream=`.
//! Running rows refresh by themselves; Play opens the file in a player above the list (outside
//! the refreshed table, so a refresh never restarts it), Download saves it, Delete asks first.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    app::{
        components::{error_text, Badge, ConfirmDialog, EmptyState, Icon},
        pages::live::refresh_ticker,
        server_fns::{list_recordings, DeleteRecording},
    },
    model::{display_bytes, display_duration, display_time, Recording},
};

/// What the in-page player shows: (title, file URL).
type Playing = RwSignal<Option<(String, String)>>;

#[component]
pub fn RecordingsPage() -> impl IntoView {
    let query = use_query_map();
    let stream = move || query.read().get("stream").filter(|s| !s.trim().is_empty());
    let delete = ServerAction::<DeleteRecording>::new();
    let tick = refresh_ticker();
    let recordings =
        Resource::new(move || (stream(), tick.get(), delete.version().get()), |(stream, _, _)| list_recordings(stream));
    let playing: Playing = RwSignal::new(None);
    let confirming = RwSignal::new(None::<(String, String)>);
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            confirming.set(None);
        }
    });
    let delete_error = move || {
        delete.value().get().and_then(Result::err).map(|err| {
            view! { <div class="alert error" role="alert">{error_text(&err)}</div> }
        })
    };

    view! {
        <Title text="Recordings"/>
        <div class="page-header">
            <div>
                <h1>"Recordings"</h1>
                <p class="lede">"Broadcasts published with a recording token, one file per source. Updates by itself."</p>
            </div>
            <form class="filter-form" method="get" action="/recordings" role="search">
                <label for="recordings-stream" class="visually-hidden">"Stream name"</label>
                <input id="recordings-stream" name="stream" placeholder="Filter by stream" value=stream/>
                <button type="submit">"Filter"</button>
            </form>
        </div>
        {delete_error}
        {move || playing.get().map(|(title, url)| view! {
            <section class="card recording-player" aria-label="Player">
                <div class="player-head">
                    <h2>{title}</h2>
                    <button type="button" class="small" on:click=move |_| playing.set(None)>"Close"</button>
                </div>
                <video id="recording-video" src=url controls autoplay playsinline></video>
            </section>
        })}
        <Transition fallback=|| view! { <p class="page-loading">"Loading recordings…"</p> }>
            {move || Suspend::new(async move {
                match recordings.await {
                    Err(err) => view! { <div class="alert error" role="alert">{error_text(&err)}</div> }.into_any(),
                    Ok(view) => {
                        let problem = view.disk_problem.map(|why| view! {
                            <div class="alert warning" role="status">{why}</div>
                        });
                        let list = if view.recordings.is_empty() {
                            view! {
                                <EmptyState title="No recordings yet" icon=Icon::Broadcast>
                                    <p>"Turn on Record in a token's settings, then broadcast with it: each source becomes a file here."</p>
                                </EmptyState>
                            }.into_any()
                        } else {
                            view! {
                                <div class="table-wrap">
                                    <table class="data-table recordings-table">
                                        <thead>
                                            <tr>
                                                <th scope="col">"Stream"</th>
                                                <th scope="col">"Started"</th>
                                                <th scope="col">"Duration"</th>
                                                <th scope="col">"Size"</th>
                                                <th scope="col">"Media"</th>
                                                <th scope="col">"Status"</th>
                                                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                            </tr>
                                        </thead>
                                        <tbody>
                                            {view.recordings.into_iter().map(|recording| view! {
                                                <RecordingRow recording playing confirming/>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            }.into_any()
                        };
                        view! { {problem} {list} }.into_any()
                    }
                }
            })}
        </Transition>
        {move || confirming.get().map(|(id, name)| view! {
            <ConfirmDialog
                title=format!("Delete the recording of “{name}”?")
                message="The file is deleted from the server for good. Copies you downloaded stay yours.".to_owned()
                confirm_label="Delete recording"
                danger=true
                pending=delete.pending()
                on_confirm=move || { delete.dispatch(DeleteRecording { id: id.clone() }); }
                on_cancel=move || confirming.set(None)
            />
        })}
    }
}

#[component]
fn RecordingRow(
    recording: Recording,
    playing: Playing,
    confirming: RwSignal<Option<(String, String)>>,
) -> impl IntoView {
    let source = recording.source_id.clone().unwrap_or_else(|| "main".to_owned());
    let title = format!("{} · {source}", recording.stream_name);
    let running = recording.status == "recording";
    let playable = recording.bytes > 0 && recording.status != "failed";
    let (status_text, tone) = match recording.status.as_str() {
        "recording" => ("Recording", "live"),
        "complete" => ("Complete", "success"),
        "interrupted" => ("Interrupted", "accent"),
        _ => ("Failed", "neutral"),
    };
    let download = format!("{}?download=1", recording.file_url);
    let file_url = recording.file_url.clone();
    let play_title = title.clone();
    let id = recording.id.clone();
    view! {
        <tr data-recording=recording.id.clone() data-status=recording.status.clone()>
            <th scope="row">
                <span class="row-title">{recording.stream_name.clone()}</span>
                <div class="row-sub muted">{format!("source {source}")}</div>
            </th>
            <td class="muted">{display_time(&recording.started_at)}</td>
            <td>{display_duration(recording.duration_ms / 1000)}</td>
            <td>{display_bytes(recording.bytes)}</td>
            <td class="muted">{recording.media()}</td>
            <td>
                <Badge text=status_text tone=tone/>
                {recording.reason.clone().map(|why| view! { <div class="row-sub muted recording-reason">{why}</div> })}
            </td>
            <td class="actions-cell">
                <div class="row-actions">
                    <button type="button" class="small" disabled=!playable
                        on:click=move |_| playing.set(Some((play_title.clone(), file_url.clone())))>
                        "Play"
                    </button>
                    {playable.then(|| view! {
                        <a class="button small" href=download download rel="external">"Download"</a>
                    })}
                    <button type="button" class="small danger-text" disabled=running
                        title=running.then_some("Stop the broadcast first")
                        on:click=move |_| confirming.set(Some((id.clone(), title.clone())))>
                        "Delete…"
                    </button>
                </div>
            </td>
        </tr>
    }
}
