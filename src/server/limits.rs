//! Limits every request meets before its route sees it: one cap on the body, whatever the door
//! — a page's server function under `/rpc`, the JSON API, WHIP/WHEP (each router puts it inside
//! its own CORS and error handling).

use axum::{
    body::Body,
    extract::Request,
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::error::ApiError;

/// Largest request body any route reads: a JSON request, a form, an SDP offer (all far smaller).
pub const MAX_REQUEST_BODY: usize = 64 * 1024;

/// How long a client may take to send a whole body: a slow sender does not hold a request (and
/// its connection) open for longer. 64 KiB in 20 s is 26 kbit/s.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// A body over the cap but under this is read to its end (and thrown away) before the 413 goes
/// out: a client still sending when the server answers and closes would see a reset, not the
/// answer. Larger ones are refused at once and the connection closed.
const DRAIN_UP_TO: usize = 1024 * 1024;

/// Answers 413 for a body over [`MAX_REQUEST_BODY`] and 408 for one not sent within
/// [`BODY_READ_TIMEOUT`]. The body is read here (no route takes a larger one), so every handler
/// gets it whole and none turns a cut-off body into a 500.
pub async fn limit_body(request: Request, next: Next) -> Response {
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > DRAIN_UP_TO as u64) {
        return ApiError::PayloadTooLarge.into_response();
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(BODY_READ_TIMEOUT, read_capped(body)).await {
        Ok(Some(bytes)) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Ok(None) => ApiError::PayloadTooLarge.into_response(),
        Err(_) => ApiError::RequestTimeout.into_response(),
    }
}

/// The body if it is at most [`MAX_REQUEST_BODY`]; `None` when it is larger (or broken off), after
/// reading on up to [`DRAIN_UP_TO`].
async fn read_capped(body: Body) -> Option<bytes::Bytes> {
    use futures_util::StreamExt;
    let mut chunks = body.into_data_stream();
    let mut kept = bytes::BytesMut::new();
    let mut total = 0usize;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.ok()?;
        total += chunk.len();
        if total > DRAIN_UP_TO {
            return None;
        }
        if total <= MAX_REQUEST_BODY {
            kept.extend_from_slice(&chunk);
        }
    }
    (total <= MAX_REQUEST_BODY).then(|| kept.freeze())
}

/// The process's open-files (soft) limit: what held connections and feeds must leave room in.
pub fn open_files_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the one struct passed, which lives here.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is u64 here, not on every target
    let soft = limit.rlim_cur as u64;
    soft
}
