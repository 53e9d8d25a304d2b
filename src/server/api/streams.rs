//! `/api/v1/streams`: what is live. The account's own list is private; one stream's state is
//! public (the viewer page needs it before anyone logs in).

use std::convert::Infallible;

use axum::{
    extract::{Path, State},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    Json,
};
use futures_util::StreamExt;

use crate::{
    db,
    names::{AccountId, StreamName},
    server::{
        auth::CurrentAccount,
        client::Client,
        error::ApiError,
        live::{self, Followed, PublicStream},
        AppState,
    },
    sfu::{SfuError, StreamInfo, StreamKey},
};

/// `GET /api/v1/streams`: the account's live streams with sources, tracks, bitrates, viewers.
pub async fn list(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
) -> Result<Json<Vec<StreamInfo>>, ApiError> {
    let streams = state.sfu.streams(Some(&account.public_id)).await.map_err(sfu_unavailable)?;
    Ok(Json(streams.into_iter().filter(|s| s.live).collect()))
}

/// `GET /api/v1/streams/{accountId}/{streamName}`: live or not, sources, viewer count.
pub async fn public(
    State(state): State<AppState>,
    Path((account, stream)): Path<(String, String)>,
) -> Result<Json<PublicStream>, ApiError> {
    let key = known_stream(&state, &account, &stream).await?;
    Ok(Json(PublicStream::new(&key, state.sfu.board().current(&key))))
}

/// `GET /api/v1/streams/{accountId}/links`: [`public`] of the stream named "links", whose path
/// the links route (`POST /api/v1/streams/{streamName}/links`) takes first.
pub async fn public_of_links(
    state: State<AppState>,
    Path(account): Path<String>,
) -> Result<Json<PublicStream>, ApiError> {
    public(state, Path((account, "links".to_owned()))).await
}

/// `GET /api/v1/streams/{accountId}/{streamName}/events`: the same as server-sent `stream` events,
/// one now and one per change.
pub async fn public_events(
    State(state): State<AppState>,
    client: Client,
    Path((account, stream)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let key = known_stream(&state, &account, &stream).await?;
    let permit = state.feeds.admit(client.ip).map_err(ApiError::from)?;
    let followed = Followed { stream: state.sfu.board().watch(&key), pairs: None };
    let events = live::feed(followed, permit, state.shutdown.clone()).map(move |view| {
        let body = serde_json::to_string(&PublicStream::new(&key, view.stream)).unwrap_or_default();
        Ok::<_, Infallible>(Event::default().event("stream").data(body))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

/// The stream of an existing account with a well-formed name, else 404: nobody holds a feed or
/// fills the live board for names that cannot exist.
async fn known_stream(state: &AppState, account: &str, stream: &str) -> Result<StreamKey, ApiError> {
    let not_found = || ApiError::NotFound(format!("there is no stream {account}/{stream}"));
    let (Ok(account), Ok(name)) = (AccountId::parse(account), StreamName::parse(stream)) else {
        return Err(not_found());
    };
    let key = StreamKey::new(&account, &name);
    if state.sfu.board().exists(&key) || db::accounts::public_id_exists(&state.pool, &account).await? {
        Ok(key)
    } else {
        Err(not_found())
    }
}

fn sfu_unavailable(err: SfuError) -> ApiError {
    ApiError::Unavailable(format!("the media server is unavailable: {err}"))
}
