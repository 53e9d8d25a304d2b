//! `ApiError`: every way an HTTP request can fail, and the JSON answer it turns into.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use crate::model::FieldError;

/// The error type of the HTTP layer. Client errors carry a message that is safe to show; internal
/// ones are logged in full and answered with a generic message.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    MalformedBody(String),
    #[error("{0}")]
    InvalidBody(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("{}: {}", .0.field, .0.message)]
    Validation(FieldError),
    #[error("authentication required")]
    Unauthenticated,
    #[error("email or password is incorrect")]
    InvalidCredentials,
    #[error("{0}")]
    Signup(#[from] SignupRefused),
    #[error("requests that change state must come from this site")]
    CrossOrigin,
    #[error("account disabled: this server's operator has disabled this account")]
    AccountDisabled,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many attempts; try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// The server is at a limit of its own (not the client's fault): 503 with `Retry-After`.
    #[error("{message}; try again in {retry_after_secs} s")]
    Busy { message: &'static str, retry_after_secs: u64 },
    #[error("the request body is larger than 64 KiB")]
    PayloadTooLarge,
    #[error("the request body was not sent in time")]
    RequestTimeout,
    #[error("{0}")]
    Unavailable(String),
    /// A viewer token or grant that does not let its bearer watch (README "Viewer tokens").
    #[error("{0}")]
    Viewer(#[from] crate::server::viewer_access::ViewerRefused),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedBody(_) => StatusCode::BAD_REQUEST,
            Self::InvalidBody(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthenticated | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Signup(_) | Self::CrossOrigin | Self::AccountDisabled => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Viewer(refused) => refused.status(),
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable machine-readable code for `{"error": {"code": …}}`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedBody(_) => "malformed_body",
            Self::InvalidBody(_) => "invalid_body",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Validation(_) => "validation_failed",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Signup(refused) => refused.code(),
            Self::CrossOrigin => "cross_origin_request",
            Self::AccountDisabled => "account_disabled",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::Busy { .. } => "busy",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::Unavailable(_) => "unavailable",
            Self::Viewer(refused) if refused.status() == StatusCode::UNAUTHORIZED => "viewer_token_invalid",
            Self::Viewer(_) => "viewer_refused",
            Self::Database(_) | Self::Internal(_) => "internal",
        }
    }

    /// The message a client may see: internal details stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            Self::Database(_) | Self::Internal(_) => "something went wrong on our side".to_owned(),
            other => other.to_string(),
        }
    }

    /// Shorthand for a 422 on one field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Validation(FieldError { field, message: message.into() })
    }
}

/// Why a sign-up was refused (403; README "Sign-up and the operator").
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignupRefused {
    #[error("sign-up is closed on this server")]
    Closed,
    #[error("sign-up on this server needs an invite: ask its operator for an invite link")]
    InviteRequired,
    #[error("this invite code is not known (it may have been withdrawn): ask the operator for a new one")]
    UnknownInvite,
    #[error("this invite has been used already: ask the operator for a new one")]
    InviteUsed,
    #[error("this invite has expired: ask the operator for a new one")]
    InviteExpired,
}

impl SignupRefused {
    pub fn code(self) -> &'static str {
        match self {
            Self::Closed => "signup_closed",
            Self::InviteRequired => "invite_required",
            Self::UnknownInvite | Self::InviteUsed | Self::InviteExpired => "invite_invalid",
        }
    }
}

impl From<crate::server::live::FeedRefused> for ApiError {
    fn from(refused: crate::server::live::FeedRefused) -> Self {
        use crate::server::live::{FeedRefused, FEED_RETRY_AFTER_SECS};
        match refused {
            FeedRefused::Address => Self::TooManyRequests { retry_after_secs: FEED_RETRY_AFTER_SECS },
            FeedRefused::Server => Self::Busy { message: refused.message(), retry_after_secs: FEED_RETRY_AFTER_SECS },
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(err: FieldError) -> Self {
        Self::Validation(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
        }
        let mut body = json!({ "error": { "code": self.code(), "message": self.public_message() } });
        if let Self::Validation(field_error) = &self {
            body["error"]["field"] = json!(field_error.field);
        }
        let mut response = (status, Json(body)).into_response();
        if let Self::TooManyRequests { retry_after_secs } | Self::Busy { retry_after_secs, .. } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        if status == StatusCode::UNAUTHORIZED && matches!(self, Self::Unauthenticated | Self::Viewer(_)) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
