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

/// Answers 413 for a body over [`MAX_REQUEST_BODY`]: at once when its `Content-Length` says so,
/// else as soon as reading it passes the cap. The body is read here (no route takes a larger
/// one), so every handler gets it whole and none turns a cut-off body into a 500.
pub async fn limit_body(request: Request, next: Next) -> Response {
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_REQUEST_BODY as u64) {
        return ApiError::PayloadTooLarge.into_response();
    }
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_REQUEST_BODY).await {
        Ok(bytes) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Err(_) => ApiError::PayloadTooLarge.into_response(),
    }
}
