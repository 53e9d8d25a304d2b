//! WHIP (RFC 9725): `POST /whip/{streamName}` with a publish token, then `PATCH`/`DELETE` on the
//! session URL it answers with.

use axum::{
    body::Body,
    extract::{Path, RawQuery, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

use super::{created, ice_server_links, query_param, read_body, source_id, valid_session_id, SignalingError, SDP};
use crate::{
    names::StreamName,
    server::{
        account_limits,
        auth::bearer_token,
        publish_rule::{self, PublishRequest as PublishCheck},
        webhooks, AppState,
    },
    sfu::{api::SessionKind, api::SessionRef, PublishRequest, StreamKey},
};

pub async fn publish(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, SignalingError> {
    let result = try_publish(&state, &stream, query.as_deref(), &headers, body).await;
    if let Err(refused) = &result {
        tell_owner(&state, &headers, &stream, query.as_deref(), refused);
    }
    result
}

/// A refused publish with a real token: its owner's `publish.refused` webhook hears why, from a
/// task of its own (the answer does not wait for the database).
fn tell_owner(state: &AppState, headers: &HeaderMap, stream: &str, query: Option<&str>, refused: &SignalingError) {
    let Some(secret) = bearer_token(headers).map(str::to_owned) else { return };
    let (state, stream) = (state.clone(), stream.to_owned());
    let source = query_param(query, "source");
    let (status, reason) = (refused.status().as_u16(), refused.message().to_owned());
    tokio::spawn(async move {
        let owner = match publish_rule::owner_of(&state.pool, &state.grants, &secret).await {
            Ok(Some(owner)) => owner,
            Ok(None) => return,
            Err(err) => return tracing::error!(%err, "publish.refused: database error"),
        };
        let data = serde_json::json!({
            "accountId": owner, "streamName": stream, "sourceId": source, "status": status, "reason": reason,
        });
        let event = webhooks::Event::new(webhooks::EventType::PublishRefused, crate::db::now_unix_ms(), data);
        state.webhooks.emit(webhooks::Owner::PublicId(&owner), &event).await;
    });
}

async fn try_publish(
    state: &AppState,
    stream: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, SignalingError> {
    let secret = bearer_token(headers).ok_or_else(|| {
        SignalingError::unauthorized("a publish token is required: send Authorization: Bearer <token>")
    })?;
    let stream = StreamName::parse(stream).map_err(SignalingError::bad_request)?;
    let source = source_id(query)?;
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let check = PublishCheck { secret, stream_name: &stream, source_id: source.as_ref(), origin };
    let grant = publish_rule::authorize(&state.pool, &state.grants, check)
        .await
        .map_err(|err| {
            tracing::error!(%err, "publish rule: database error");
            SignalingError::internal()
        })?
        .map_err(SignalingError::from)?;
    let record = match record_choice(query)? {
        None => grant.record,
        Some(false) => false,
        Some(true) if grant.record => true,
        Some(true) => {
            return Err(SignalingError::forbidden(
                "this token does not allow recording (its Record setting is off); publish without ?record=1",
            ))
        }
    };
    let offer = read_body(headers, body, SDP).await?;

    let limits = account_limits::of_account(state, &grant.account_public_id).await.map_err(|err| {
        tracing::error!(%err, "account limits: database error");
        SignalingError::internal()
    })?;
    let request = PublishRequest {
        stream: StreamKey::new(&grant.account_public_id, &stream),
        source,
        token_id: grant.token_id,
        record,
        offer,
        limits: account_limits::for_sfu(&limits),
    };
    let session = state.sfu.publish(request).await?;
    let location = format!("/whip/{stream}/{}", session.session_id);
    Ok(created(location, session, ice_server_links(&state.settings.ice_servers_now())))
}

/// `?record=0|1`: whether this publish is recorded (default: what the token allows).
fn record_choice(query: Option<&str>) -> Result<Option<bool>, SignalingError> {
    match query_param(query, "record").as_deref() {
        None => Ok(None),
        Some("1") => Ok(Some(true)),
        Some("0") => Ok(Some(false)),
        Some(v) => Err(SignalingError::bad_request(format!("record must be 0 or 1, not {v:?}"))),
    }
}

/// Trickle ICE (RFC 8840 fragments). ICE restarts are not supported: 422 (RFC 9725 §4.3.1).
pub async fn patch(
    State(state): State<AppState>,
    Path((stream, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, SignalingError> {
    let session = session_ref(stream, session)?;
    super::trickle(&state, session, &headers, body).await
}

/// Ends the feed; its viewers stay connected and wait for a replacement.
pub async fn delete(
    State(state): State<AppState>,
    Path((stream, session)): Path<(String, String)>,
) -> Result<Response, SignalingError> {
    state.sfu.end(session_ref(stream, session)?).await?;
    Ok(StatusCode::OK.into_response())
}

/// A session URL names an existing session or none: anything malformed is 404.
fn session_ref(stream: String, id: String) -> Result<SessionRef, SignalingError> {
    let not_found = || SignalingError::from(crate::sfu::SfuError::SessionNotFound);
    let stream_name = StreamName::parse(&stream).map_err(|_| not_found())?;
    if !valid_session_id(&id) {
        return Err(not_found());
    }
    Ok(SessionRef { id, kind: SessionKind::Publisher, account: None, stream_name })
}
