//! The connection test behind "Test my connection" (README "Connectivity self-check"): a
//! logged-in browser POSTs an offer to `/self-check/probe?transport=udp|tcp|any` and gets an
//! answer whose candidates are only those of that transport. If ICE and DTLS complete, media of
//! that kind reaches the SFU from where the visitor sits. The session carries no media, joins no
//! stream and ends after 30 s, or at `DELETE` on its URL.

use axum::{
    body::Body,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

use super::{created, ice_server_links, query_param, read_body, valid_session_id, SignalingError, SDP};
use crate::{
    server::{auth::CurrentAccount, AppState},
    sfu::{
        api::{ProbeRequest, ProbeTransport, SessionKind, SessionRef, StreamKey},
        SfuError,
    },
};

pub async fn create(
    State(state): State<AppState>,
    CurrentAccount(_): CurrentAccount,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, SignalingError> {
    let transport = transport(query.as_deref())?;
    let offer = read_body(&headers, body, SDP).await?;
    let session = state.sfu.probe(ProbeRequest { transport, offer }).await?;
    let location = format!("/self-check/probe/{}", session.session_id);
    Ok(created(location, session, ice_server_links(&state.settings.ice_servers_now())))
}

pub async fn delete(
    State(state): State<AppState>,
    CurrentAccount(_): CurrentAccount,
    Path(id): Path<String>,
) -> Result<Response, SignalingError> {
    if !valid_session_id(&id) {
        return Err(SfuError::SessionNotFound.into());
    }
    let session = SessionRef { id, kind: SessionKind::Probe, account: None, stream_name: StreamKey::probe().name };
    state.sfu.end(session).await?;
    Ok(StatusCode::OK.into_response())
}

/// `?transport=` (default `any`).
fn transport(query: Option<&str>) -> Result<ProbeTransport, SignalingError> {
    match query_param(query, "transport").as_deref() {
        None | Some("any") => Ok(ProbeTransport::Any),
        Some("udp") => Ok(ProbeTransport::Udp),
        Some("tcp") => Ok(ProbeTransport::Tcp),
        Some(other) => Err(SignalingError::bad_request(format!("transport must be udp, tcp or any, not {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transport_is_udp_tcp_or_any() {
        assert_eq!(transport(None).unwrap(), ProbeTransport::Any);
        assert_eq!(transport(Some("transport=udp")).unwrap(), ProbeTransport::Udp);
        assert_eq!(transport(Some("transport=tcp")).unwrap(), ProbeTransport::Tcp);
        assert_eq!(transport(Some("x=1&transport=any")).unwrap(), ProbeTransport::Any);
        assert!(transport(Some("transport=quic")).is_err());
    }
}
