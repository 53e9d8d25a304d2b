//! `ApiJson<T>`: a JSON body extractor whose every failure is an `ApiError`, so a bad body gets
//! the same `{"error": …}` shape as every other error.

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, FromRequest, Request},
    http::{header, StatusCode},
};
use serde::de::DeserializeOwned;

use crate::server::error::ApiError;

/// A JSON request body parsed into `T`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType("expected Content-Type: application/json".into()));
        }
        let body = Bytes::from_request(request, state).await.map_err(|rejection: BytesRejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::MalformedBody(rejection.body_text())
            }
        })?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::MalformedBody("request body is empty; expected a JSON object".into()));
        }
        serde_json::from_slice(&body).map(ApiJson).map_err(|err| {
            use serde_json::error::Category;
            match err.classify() {
                // Well-formed JSON of the wrong shape (missing field, wrong type) is a 422.
                Category::Data => ApiError::InvalidBody(strip_position(&err.to_string())),
                Category::Syntax | Category::Eof | Category::Io => ApiError::MalformedBody(format!(
                    "request body is not valid JSON: {}",
                    strip_position(&err.to_string())
                )),
            }
        })
    }
}

/// serde_json ends messages with " at line 1 column 17": noise for an API client.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}
