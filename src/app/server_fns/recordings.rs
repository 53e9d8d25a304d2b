//! The account's recordings, for `/recordings`.

use leptos::prelude::*;
use leptos::server_fn::ServerFnError;

#[cfg(feature = "ssr")]
use super::ssr;
use crate::model::RecordingsView;

/// Newest first; one stream's only when `stream` is given (empty means all).
#[server(prefix = "/rpc", endpoint = "recordings")]
pub async fn list_recordings(stream: Option<String>) -> Result<RecordingsView, ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    let stream = stream.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let recordings =
        crate::server::recordings::list(&state.pool, &account, stream).await.map_err(|e| ssr::fail(e, None))?;
    Ok(RecordingsView { recordings, disk_problem: ssr::recording_paused(&state) })
}

/// Deletes a finished recording and its file.
#[server(prefix = "/rpc", endpoint = "delete_recording")]
pub async fn delete_recording(id: String) -> Result<(), ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    crate::server::recordings::delete(&state.pool, &state.settings.recordings_folder, &account, &id)
        .await
        .map_err(|e| ssr::fail(e, None))
}
