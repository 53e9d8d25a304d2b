//! WHEP: `POST /whep/{accountId}/{streamName}` with a recvonly offer, then `PATCH`/`DELETE` on
//! the session URL. Who may watch is `viewer_access`'s to say: a web page on a site outside the
//! stream's embed list is refused, and a secure stream needs a subscribe token or viewer grant.

use axum::{
    body::Body,
    extract::{Path, RawQuery, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

use super::{
    created, ice_server_links, query_param, read_body, source_id, valid_session_id, SignalingError, REL_LAYER, REL_SSE,
    SDP,
};
use crate::{
    names::{AccountId, StreamName},
    server::{
        account_limits, client::Client, origin::is_same_origin, tokens::normalize_origin, viewer_access, AppState,
    },
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
    let embedded_on = embedded_on(&headers, query.as_deref(), &state.settings.public_origin)?;
    let offer = read_body(&headers, body, SDP).await?;
    let limits = account_limits::of_account(&state, &account).await.map_err(|err| {
        tracing::error!(%err, "account limits: database error");
        SignalingError::internal()
    })?;
    let request = ViewRequest {
        stream: StreamKey::new(&account, &stream),
        source,
        offer,
        client: client.ip,
        pass,
        embedded_on,
        limits: account_limits::for_sfu(&limits),
    };
    let session = state.sfu.view(request).await?;
    let base = format!("/whep/{account}/{stream}/{}", session.session_id);
    let mut links = ice_server_links(&state.settings.ice_servers_now());
    links.push(format!("<{base}/events>; rel=\"{REL_SSE}\"; events=\"{EVENTS}\""));
    links.push(format!("<{base}/layer>; rel=\"{REL_LAYER}\""));
    Ok(created(base, session, links))
}

/// The site whose page plays the stream, for the Live page's count by site: the offer's `Origin`
/// when another site's page sends it (the module used there), else the `embed` parameter the
/// hosted viewer adds when it is framed (the page's `Origin` is this server's then). The
/// parameter is only a figure for the owner, never a permission: access is decided above.
fn embedded_on(
    headers: &HeaderMap,
    query: Option<&str>,
    public_origin: &str,
) -> Result<Option<std::sync::Arc<str>>, SignalingError> {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        if !is_same_origin(headers, public_origin) {
            return Ok(normalize_origin(origin).ok().map(Into::into));
        }
    }
    match query_param(query, "embed").filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(site) if site.len() > 255 => {
            Err(SignalingError::bad_request("embed must be an origin of at most 255 bytes"))
        }
        Some(site) => normalize_origin(&site)
            .map(|origin| (!origin.eq_ignore_ascii_case(public_origin)).then(|| origin.into()))
            .map_err(|e| SignalingError::bad_request(format!("embed: {e}"))),
    }
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
