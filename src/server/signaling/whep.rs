//! WHEP: `POST /whep/{accountId}/{streamName}` with a recvonly offer, then `PATCH`/`DELETE` on
//! the session URL. Who may watch is `viewer_access`'s to say: a web page on a site outside the
//! stream's embed list is refused, and a secure stream needs a subscribe token or viewer grant.

use axum::{
    body::Body,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

use super::{
    created, ice_server_links, read_body, source_id, valid_session_id, SignalingError, REL_LAYER, REL_SSE, SDP,
};
use crate::{
    names::{AccountId, StreamName},
    server::{client::Client, viewer_access, AppState},
    sfu::{
        api::{SessionKind, SessionRef},
        SfuError, StreamKey, ViewRequest,
    },
};

/// The events the SSE extension link announces.
pub const EVENTS: &str = "active,inactive,viewercount,sources";

pub async fn view(
    State(state): State<AppState>,
    client: Client,
    Path((account, stream)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, SignalingError> {
    let account = AccountId::parse(&account).map_err(SignalingError::bad_request)?;
    let stream = StreamName::parse(&stream).map_err(SignalingError::bad_request)?;
    let source = source_id(query.as_deref())?;
    let pass = viewer_access::admit_viewer(&state, &headers, &account, &stream)
        .await
        .map_err(|err| {
            tracing::error!(%err, "viewer access: database error");
            SignalingError::internal()
        })?
        .map_err(SignalingError::from)?;
    let offer = read_body(&headers, body, SDP).await?;
    let request = ViewRequest { stream: StreamKey::new(&account, &stream), source, offer, client: client.ip, pass };
    let session = state.sfu.view(request).await?;
    let base = format!("/whep/{account}/{stream}/{}", session.session_id);
    let mut links = ice_server_links(&state.settings.ice_servers_now());
    links.push(format!("<{base}/events>; rel=\"{REL_SSE}\"; events=\"{EVENTS}\""));
    links.push(format!("<{base}/layer>; rel=\"{REL_LAYER}\""));
    Ok(created(base, session, links))
}

pub async fn patch(
    State(state): State<AppState>,
    Path((account, stream, session)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, SignalingError> {
    let session = session_ref(account, stream, session)?;
    super::trickle(&state, session, &headers, body).await
}

pub async fn delete(
    State(state): State<AppState>,
    Path((account, stream, session)): Path<(String, String, String)>,
) -> Result<Response, SignalingError> {
    state.sfu.end(session_ref(account, stream, session)?).await?;
    Ok(StatusCode::OK.into_response())
}

/// A session URL names an existing session or none: anything malformed is 404.
pub fn session_ref(account: String, stream: String, id: String) -> Result<SessionRef, SignalingError> {
    let (Ok(account), Ok(stream_name)) = (AccountId::parse(&account), StreamName::parse(&stream)) else {
        return Err(SfuError::SessionNotFound.into());
    };
    if !valid_session_id(&id) {
        return Err(SfuError::SessionNotFound.into());
    }
    Ok(SessionRef { id, kind: SessionKind::Viewer, account: Some(account), stream_name })
}
