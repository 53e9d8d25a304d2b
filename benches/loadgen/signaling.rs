//! The HTTP half of WHIP/WHEP as a client: POST an offer, choose a simulcast layer, DELETE the
//! session.

use std::{io, time::Duration};

pub struct Created {
    pub answer: String,
    /// Absolute URL of the session (from `Location`).
    pub location: String,
}

/// POSTs an SDP offer (RFC 9725 §4.2); a `201 Created` with the answer is success.
pub async fn post_offer(http: &reqwest::Client, url: &str, token: Option<&str>, offer: String) -> io::Result<Created> {
    let mut request =
        http.post(url).header("Content-Type", "application/sdp").body(offer).timeout(Duration::from_secs(20));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|err| io::Error::other(format!("POST {url}: {err}")))?;
    let status = response.status();
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.text().await.map_err(io::Error::other)?;
    if status.as_u16() != 201 {
        return Err(io::Error::other(format!("POST {url}: {status}: {}", body.trim())));
    }
    let location = location.ok_or_else(|| io::Error::other("201 without Location"))?;
    let base = reqwest::Url::parse(url).map_err(io::Error::other)?;
    let location = base.join(&location).map_err(io::Error::other)?.to_string();
    Ok(Created { answer: body, location })
}

/// Ends a session (best effort: the benchmark is finishing either way).
pub async fn delete(http: &reqwest::Client, session_url: &str) {
    let _ = http.delete(session_url).timeout(Duration::from_secs(5)).send().await;
}

/// Asks for pair 0's simulcast layer (`auto`, `high`, `medium`, `low`) through the session's layer
/// extension; a `204 No Content` is success.
pub async fn select_layer(http: &reqwest::Client, session_url: &str, quality: &str) -> io::Result<()> {
    let url = format!("{session_url}/layer");
    let body = format!(r#"{{"pair":0,"layer":"{quality}"}}"#);
    let response = http
        .post(&url)
        .header("Content-Type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|err| io::Error::other(format!("POST {url}: {err}")))?;
    let status = response.status();
    if status.as_u16() != 204 {
        let body = response.text().await.unwrap_or_default();
        return Err(io::Error::other(format!("POST {url}: {status}: {}", body.trim())));
    }
    Ok(())
}
