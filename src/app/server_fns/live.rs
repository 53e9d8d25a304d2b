//! The account's live streams, for `/live` and the live badges on tokens.

use leptos::prelude::*;
use leptos::server_fn::ServerFnError;

#[cfg(feature = "ssr")]
use super::ssr;
use crate::model::LiveStream;

#[server(prefix = "/rpc", endpoint = "live_streams")]
pub async fn live_streams() -> Result<Vec<LiveStream>, ServerFnError> {
    use crate::model::{LiveHealth, LiveLayer, LiveSource, LiveTrack, ViewerGroup};
    use crate::sfu::api::PassKind;
    let (state, account) = ssr::require_account().await?;
    let streams = state
        .sfu
        .streams(Some(&account.public_id))
        .await
        .map_err(|err| ServerFnError::new(format!("the media server is unavailable: {err}")))?;
    let now = crate::db::now_unix();
    let mut labels = std::collections::HashMap::new();
    if streams.iter().any(|s| s.viewers_by_pass.iter().any(|p| p.kind == PassKind::SubscribeToken)) {
        let tokens =
            crate::db::subscribe_tokens::list(&state.pool, account.id).await.map_err(|e| ssr::fail(e.into(), None))?;
        labels.extend(tokens.into_iter().map(|t| (t.id, t.label)));
    }
    let pass_name = |kind: PassKind, id: &str| match kind {
        PassKind::SubscribeToken => match labels.get(id) {
            Some(label) => format!("Viewer token {label}"),
            None => "A deleted viewer token".to_owned(),
        },
        PassKind::Link => format!("Viewer link …{}", &id[id.len().saturating_sub(4)..]),
    };
    let history = &state.live_history;
    Ok(streams
        .into_iter()
        .filter(|s| s.live)
        .map(|s| LiveStream {
            viewers_by_pass: s
                .viewers_by_pass
                .iter()
                .map(|p| ViewerGroup { name: pass_name(p.kind, &p.id), viewers: p.viewers })
                .collect(),
            viewers_by_site: s
                .viewers_by_site
                .iter()
                .map(|site| ViewerGroup { name: format!("On {}", site.origin), viewers: site.viewers })
                .collect(),
            account_id: s.account_id.clone(),
            stream_name: s.stream_name.clone(),
            viewers: s.viewers,
            uptime_secs: s.started_at.map_or(0, |started| now - started),
            bitrate_bps: s.bitrate_bps,
            recording: s.recording,
            sources: s
                .sources
                .into_iter()
                .map(|source| LiveSource {
                    history: history.of(&s.account_id, &s.stream_name, source.source_id.as_deref()),
                    health: LiveHealth {
                        rtt_ms: source.health.rtt_ms,
                        loss_percent: source.health.loss_percent,
                        nacks: source.health.nacks,
                        keyframe_requests: source.health.keyframe_requests,
                    },
                    source_id: source.source_id,
                    active: source.active,
                    bitrate_bps: source.bitrate_bps,
                    token_id: source.token_id,
                    recording: source.recording,
                    tracks: source
                        .tracks
                        .into_iter()
                        .map(|t| LiveTrack { kind: t.kind.to_owned(), codec: t.codec.map(str::to_owned) })
                        .collect(),
                    layers: source
                        .layers
                        .into_iter()
                        .map(|l| LiveLayer {
                            layer: l.layer.as_str().to_owned(),
                            rid: l.rid,
                            width: l.width,
                            height: l.height,
                            fps: l.fps,
                            bitrate_bps: l.bitrate_bps,
                            active: l.active,
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect())
}

/// Why nothing is recorded now (the recordings disk is below `--recordings-min-free`), if so.
#[server(prefix = "/rpc", endpoint = "recording_paused")]
pub async fn recording_paused() -> Result<Option<String>, ServerFnError> {
    let (state, _) = ssr::require_account().await?;
    Ok(ssr::recording_paused(&state))
}

/// The account's use of the SFU now against its limits, for the Live page.
#[server(prefix = "/rpc", endpoint = "account_usage")]
pub async fn account_usage() -> Result<crate::model::AccountUsage, ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    let unavailable =
        |e: crate::sfu::SfuError| ssr::fail(crate::server::error::ApiError::Unavailable(e.to_string()), None);
    let streams = state.sfu.streams(Some(&account.public_id)).await.map_err(unavailable)?;
    let limits = crate::server::account_limits::of_account(&state, &account.public_id)
        .await
        .map_err(|e| ssr::fail(e.into(), None))?;
    Ok(crate::model::AccountUsage {
        publishers: streams.iter().map(|s| s.sources.len() as u32).sum(),
        viewers: streams.iter().map(|s| s.viewers as u32).sum(),
        egress_bps: streams.iter().map(|s| s.egress_bps).sum(),
        limits,
    })
}
