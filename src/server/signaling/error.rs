//! `SignalingError`: how the WHIP/WHEP doors fail. Plain-text bodies (these clients are encoders
//! and players, not the dashboard), with the headers RFC 9725 and RFC 6750 ask for.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

use crate::{server::publish_rule::PublishDenied, sfu::SfuError};

/// Seconds a client should wait before retrying a stream that is not live or a full server.
const RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug)]
pub struct SignalingError {
    status: StatusCode,
    message: String,
    /// Seconds for `Retry-After`, when the client should come back.
    retry_after: Option<u64>,
}

impl SignalingError {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), retry_after: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("the body must be {expected}"))
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self { status: StatusCode::TOO_MANY_REQUESTS, message: message.into(), retry_after: Some(retry_after_secs) }
    }

    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl From<PublishDenied> for SignalingError {
    fn from(denied: PublishDenied) -> Self {
        Self::new(denied.status(), denied.to_string())
    }
}

impl From<crate::server::viewer_access::ViewerRefused> for SignalingError {
    fn from(refused: crate::server::viewer_access::ViewerRefused) -> Self {
        Self::new(refused.status(), refused.to_string())
    }
}

/// The same statuses as the public feed's: 429 for one address's share, 503 for the server's.
impl From<crate::server::live::FeedRefused> for SignalingError {
    fn from(refused: crate::server::live::FeedRefused) -> Self {
        use crate::server::live::{FeedRefused, FEED_RETRY_AFTER_SECS};
        let status = match refused {
            FeedRefused::Address => StatusCode::TOO_MANY_REQUESTS,
            FeedRefused::Server => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self { status, message: refused.message().to_owned(), retry_after: Some(FEED_RETRY_AFTER_SECS) }
    }
}

impl From<SfuError> for SignalingError {
    fn from(err: SfuError) -> Self {
        let status = match &err {
            SfuError::BadOffer(_) | SfuError::BadRequest(_) => StatusCode::BAD_REQUEST,
            SfuError::NoCommonCodec(_) => StatusCode::NOT_ACCEPTABLE,
            SfuError::NotLive | SfuError::SessionNotFound | SfuError::NotFound(_) => StatusCode::NOT_FOUND,
            SfuError::LimitReached(_) | SfuError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            SfuError::QuotaReached(_) => StatusCode::TOO_MANY_REQUESTS,
            // RFC 9725 §4.3.1: a session that supports trickle but not ICE restarts answers 422.
            SfuError::IceRestartUnsupported => StatusCode::UNPROCESSABLE_ENTITY,
            SfuError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        };
        let retry_after = matches!(
            err,
            SfuError::NotLive | SfuError::LimitReached(_) | SfuError::QuotaReached(_) | SfuError::Unavailable
        )
        .then_some(RETRY_AFTER_SECS);
        Self { status, message: err.to_string(), retry_after }
    }
}

impl IntoResponse for SignalingError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, message = %self.message, "signaling request failed");
        }
        let mut response =
            (self.status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.message + "\n").into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
