//! The SFU's HTTP doors: WHIP (RFC 9725) at `/whip/…` and WHEP at `/whep/…`, with the WHEP
//! server-sent-events and layer extensions. Handlers parse, authorise and hand the SDP to the SFU;
//! every response, errors included, carries CORS headers so browser clients see it.

mod error;
mod events;
mod probe;
pub mod throttle;
mod whep;
mod whip;

use std::time::Duration;

use axum::{
    body::Body,
    http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, MethodRouter},
    Router,
};
use tower_http::cors::{Any, CorsLayer};

pub use error::SignalingError;

use super::AppState;
use crate::{
    names::SourceId,
    sfu::{api::SessionRef, IceServer, SessionCreated},
};

/// Offers and answers are a few kilobytes; this bounds what a client can make us buffer.
pub const MAX_SDP_BYTES: usize = 64 * 1024;

pub const SDP: &str = "application/sdp";
pub const TRICKLE: &str = "application/trickle-ice-sdpfrag";

pub const REL_SSE: &str = "urn:ietf:params:whep:ext:core:server-sent-events";
pub const REL_LAYER: &str = "urn:ietf:params:whep:ext:core:layer";

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/whip/{stream}", endpoint(whip::publish))
        .route("/whip/{stream}/{session}", session_routes(whip::patch, whip::delete))
        .route("/whep/{account}/{stream}", endpoint(whep::view))
        .route("/self-check/probe", axum::routing::post(probe::create).fallback(not_allowed("POST")))
        .route("/self-check/probe/{session}", axum::routing::delete(probe::delete).fallback(not_allowed("DELETE")))
        .route("/whep/{account}/{stream}/{session}", session_routes(whep::patch, whep::delete))
        .route(
            "/whep/{account}/{stream}/{session}/events",
            get(events::session_events).post(events::subscribe).fallback(not_allowed("GET, POST, OPTIONS")),
        )
        .route(
            "/whep/{account}/{stream}/{session}/layer",
            axum::routing::post(events::select_source).fallback(not_allowed("POST, OPTIONS")),
        )
        .layer(axum::middleware::from_fn(crate::server::limits::limit_body))
        .layer(axum::middleware::from_fn_with_state(state.clone(), throttle::limit))
        .layer(cors())
        .layer(axum::middleware::from_fn(advertise_formats))
}

/// The CORS layer answers every `OPTIONS` itself; this adds what a WHIP/WHEP client may learn
/// from it: the offer format an endpoint takes and the patch format a session takes.
async fn advertise_formats(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let is_options = request.method() == Method::OPTIONS;
    let segments = request.uri().path().trim_matches('/').split('/').count();
    let is_whep = request.uri().path().starts_with("/whep/");
    let mut response = next.run(request).await;
    if is_options {
        let endpoint_segments = if is_whep { 3 } else { 2 };
        let headers = response.headers_mut();
        if segments == endpoint_segments {
            headers.insert("accept-post", HeaderValue::from_static(SDP));
        } else if segments == endpoint_segments + 1 {
            headers.insert("accept-patch", HeaderValue::from_static(TRICKLE));
        }
    }
    response
}

/// CORS for every door: any origin may call them (the token, not the origin, authorises; the
/// token's `allowedOrigins` narrows it), and the headers a WHIP/WHEP client reads are exposed.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::IF_MATCH])
        .expose_headers([
            header::LOCATION,
            header::ETAG,
            header::LINK,
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("accept-patch"),
        ])
        .max_age(Duration::from_secs(24 * 3600))
}

fn endpoint<H, T>(post: H) -> MethodRouter<AppState>
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    axum::routing::post(post).fallback(not_allowed("POST, OPTIONS"))
}

fn session_routes<P, PT, D, DT>(patch: P, delete: D) -> MethodRouter<AppState>
where
    P: axum::handler::Handler<PT, AppState>,
    D: axum::handler::Handler<DT, AppState>,
    PT: 'static,
    DT: 'static,
{
    axum::routing::patch(patch).delete(delete).fallback(not_allowed("PATCH, DELETE, OPTIONS"))
}

/// RFC 9725 §4: GET, HEAD and PUT (and anything else unlisted) are 405 with `Allow`.
fn not_allowed(allow: &'static str) -> MethodRouter<AppState> {
    axum::routing::any(move || async move {
        let mut response = SignalingError::new(StatusCode::METHOD_NOT_ALLOWED, format!("use {allow}")).into_response();
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
        response
    })
}

/// 415 unless the request's content type is `expected` (parameters such as charset allowed).
fn check_content_type(headers: &HeaderMap, expected: &str) -> Result<(), SignalingError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(SignalingError::unsupported_media_type(expected))
    }
}

/// Reads at most `limit` bytes of body, or answers 400.
async fn read_bounded(body: Body, limit: usize) -> Result<axum::body::Bytes, SignalingError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| SignalingError::bad_request(format!("the body is larger than {} KiB", limit.div_ceil(1024))))
}

/// Checks the content type and reads a bounded UTF-8 body.
async fn read_body(headers: &HeaderMap, body: Body, expected: &str) -> Result<String, SignalingError> {
    check_content_type(headers, expected)?;
    let bytes = read_bounded(body, MAX_SDP_BYTES).await?;
    String::from_utf8(bytes.to_vec()).map_err(|_| SignalingError::bad_request("the body is not UTF-8 text"))
}

/// `PATCH` on a WHIP or WHEP session: trickled candidates (RFC 8840), honouring `If-Match`.
async fn trickle(
    state: &AppState,
    session: SessionRef,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, SignalingError> {
    let fragment = read_body(headers, body, TRICKLE).await?;
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(str::to_owned);
    state.sfu.trickle(session, if_match, fragment).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `201 Created` with the answer and the headers RFC 9725 §4.2 lists.
fn created(location: String, session: SessionCreated, links: Vec<String>) -> Response {
    let mut response = (StatusCode::CREATED, [(header::CONTENT_TYPE, SDP)], session.answer).into_response();
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.append(name, value);
        }
    };
    set(header::LOCATION, &location);
    set(header::ETAG, &session.etag);
    set(HeaderName::from_static("accept-patch"), TRICKLE);
    for link in links {
        set(header::LINK, &link);
    }
    response
}

/// `Link: <url>; rel="ice-server"` (RFC 9725 §4.6), with credentials when configured.
fn ice_server_links(servers: &[IceServer]) -> Vec<String> {
    servers
        .iter()
        .map(|server| {
            let mut link = format!("<{}>; rel=\"ice-server\"", server.url);
            if let (Some(username), Some(credential)) = (&server.username, &server.credential) {
                link.push_str(&format!(
                    "; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                    quote_escape(username),
                    quote_escape(credential)
                ));
            }
            link
        })
        .collect()
}

fn quote_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Sessions ids are 32 lowercase hex digits; anything else cannot exist.
fn valid_session_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// One parameter of a raw query string, decoded (the first when repeated).
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// `?sourceId=` from a raw query string; absent or empty is the main source.
fn source_id(query: Option<&str>) -> Result<Option<SourceId>, SignalingError> {
    match query_param(query, "sourceId") {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => SourceId::parse(&v).map(Some).map_err(SignalingError::bad_request),
    }
}
