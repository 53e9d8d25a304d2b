//! `GET /watch/{accountId}/{streamName}`: the hosted viewer, embeddable anywhere. A small HTML
//! document; `public/watch.js` does the playing with the publish/play module and reads the
//! options (PRODUCT.md §7) from the query string.

use axum::{
    extract::{Path, State},
    http::{header, StatusCode},
    response::{Html, IntoResponse, Response},
};

use super::{error::ApiError, viewer_access::StreamAccess, AppState};
use crate::names::{AccountId, StreamName};

pub async fn page(State(state): State<AppState>, Path((account, stream)): Path<(String, String)>) -> Response {
    let (Ok(account), Ok(stream)) = (AccountId::parse(&account), StreamName::parse(&stream)) else {
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "no such stream\n")
            .into_response();
    };
    // Which sites may frame it, and whether watching needs a viewer token: the tokens covering
    // the stream decide (README "Viewer access").
    let access = match StreamAccess::of_stream(&state.pool, &account, &stream).await {
        Ok(access) => access,
        Err(err) => return ApiError::from(err).into_response(),
    };
    // Both are plain [a-z0-9_.-] here, so they need no escaping in HTML.
    let page = Html(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{stream} · ferrocast</title>
<link rel="icon" href="/favicon.ico">
<link rel="stylesheet" href="/watch.css">
<script type="module" src="/watch.js"></script>
</head>
<body>
<main class="player" id="player" data-account="{account}" data-stream="{stream}" data-secure="{secure}" data-state="offline">
  <div class="stage" id="stage"></div>
  <div class="offline" id="offline" role="status">
    <span class="offline-badge">Not live</span>
    <p class="offline-text" id="offline-text">This stream starts playing by itself when it goes live.</p>
    <div class="picker" id="picker" hidden></div>
  </div>
  <div class="hud">
    <span class="badge-live" id="live-badge" hidden>Live</span>
    <span class="viewers" id="viewers" hidden></span>
  </div>
  <div class="stats" id="stats" hidden></div>
  <div class="controls" id="controls">
    <button type="button" id="unmute" hidden>🔊 Unmute</button>
    <div class="source-bar" id="source-bar" hidden></div>
    <select id="quality" aria-label="Quality" hidden></select>
    <button type="button" id="pip" hidden>Picture in picture</button>
    <button type="button" id="fullscreen" hidden>Full screen</button>
  </div>
</main>
</body>
</html>
"#,
        secure = access.secure,
    ));
    // The player's own scripts only, nothing inline.
    let policy = format!("script-src 'self'; object-src 'none'; base-uri 'none'; {}", access.embed.frame_ancestors());
    ([(header::CONTENT_SECURITY_POLICY, policy)], page).into_response()
}
