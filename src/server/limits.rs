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

/// Answers 413 for a body over [`MAX_REQUEST_BODY`]: at once when its `Content-Length` says so,
/// else as soon as reading it passes the cap; 408 for one not sent within [`BODY_READ_TIMEOUT`].
/// The body is read here (no route takes a larger one), so every handler gets it whole and none
/// turns a cut-off body into a 500.
pub async fn limit_body(request: Request, next: Next) -> Response {
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_REQUEST_BODY as u64) {
        return ApiError::PayloadTooLarge.into_response();
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(BODY_READ_TIMEOUT, axum::body::to_bytes(body, MAX_REQUEST_BODY)).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Ok(Err(_)) => ApiError::PayloadTooLarge.into_response(),
        Err(_) => ApiError::RequestTimeout.into_response(),
    }
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
