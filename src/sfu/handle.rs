//! The only way into the engine: cheap to clone, every call bounded in time.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot};

use super::{
    api::{
        Command, ProbeRequest, PublishRequest, Selection, SessionCreated, SessionInfo, SessionRef, SfuError,
        StreamInfo, StreamKey, ViewRequest,
    },
    board::Board,
};

/// How long a caller waits for the engine before answering 503: it only stalls if it is
/// overloaded or gone.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct SfuHandle {
    commands: mpsc::Sender<Command>,
    board: Board,
    /// Turns `true` if the engine task died of a panic.
    failed: tokio::sync::watch::Receiver<bool>,
    udp_addrs: Arc<[SocketAddr]>,
    tcp_addrs: Arc<[SocketAddr]>,
}

impl SfuHandle {
    pub(super) fn new(
        commands: mpsc::Sender<Command>,
        board: Board,
        failed: tokio::sync::watch::Receiver<bool>,
        udp_addrs: Vec<SocketAddr>,
        tcp_addrs: Vec<SocketAddr>,
    ) -> Self {
        Self { commands, board, failed, udp_addrs: udp_addrs.into(), tcp_addrs: tcp_addrs.into() }
    }

    /// The UDP addresses peers reach the SFU at (as announced in candidates).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The ICE-TCP addresses (passive candidates); empty when TCP is off.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    /// Completes if the engine task dies (a panic no guard caught); never on a normal stop.
    pub async fn failed(&self) {
        let mut failed = self.failed.clone();
        if failed.wait_for(|failed| *failed).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Whether the engine task is still running.
    pub fn is_running(&self) -> bool {
        !self.commands.is_closed()
    }

    /// Every stream's live state, read without asking the engine.
    pub fn board(&self) -> &Board {
        &self.board
    }

    pub async fn publish(&self, request: PublishRequest) -> Result<SessionCreated, SfuError> {
        self.ask(|reply| Command::Publish(request, reply)).await?
    }

    pub async fn view(&self, request: ViewRequest) -> Result<SessionCreated, SfuError> {
        self.ask(|reply| Command::View(request, reply)).await?
    }

    /// A connectivity probe session (see [`ProbeRequest`]).
    pub async fn probe(&self, request: ProbeRequest) -> Result<SessionCreated, SfuError> {
        self.ask(|reply| Command::Probe(request, reply)).await?
    }

    /// Adds trickled candidates (`application/trickle-ice-sdpfrag`) to a session.
    pub async fn trickle(
        &self,
        session: SessionRef,
        if_match: Option<String>,
        fragment: String,
    ) -> Result<(), SfuError> {
        self.ask(|reply| Command::Trickle { session, if_match, fragment, reply }).await?
    }

    pub async fn end(&self, session: SessionRef) -> Result<(), SfuError> {
        self.ask(|reply| Command::End { session, reply }).await?
    }

    /// Changes what one of a viewer's audio/video pairs shows: its source, its simulcast layer.
    pub async fn select(&self, session: SessionRef, selection: Selection) -> Result<(), SfuError> {
        self.ask(|reply| Command::Select { session, selection, reply }).await?
    }

    /// Ends every feed published with this token; answers how many.
    pub async fn end_token(&self, token_id: String) -> Result<usize, SfuError> {
        self.ask(|reply| Command::EndToken { token_id, reply }).await?
    }

    pub async fn session(&self, session: SessionRef) -> Result<SessionInfo, SfuError> {
        self.ask(|reply| Command::Session { session, reply }).await?
    }

    /// Live streams, of one account or of all.
    pub async fn streams(&self, account: Option<&str>) -> Result<Vec<StreamInfo>, SfuError> {
        let account = account.map(Arc::from);
        self.ask(|reply| Command::Streams { account, reply }).await
    }

    /// One stream's state; `None` when nothing is published or watched under that name.
    pub async fn stream(&self, key: StreamKey) -> Result<Option<StreamInfo>, SfuError> {
        self.ask(|reply| Command::Stream { key, reply }).await
    }

    /// Tells the engine a recording is no longer written (its source stops showing REC).
    pub async fn recording_ended(&self, id: crate::recorder::RecordingId) {
        let _ = self.commands.send(Command::RecordingMoved { from: id, to: None }).await;
    }

    /// Tells the engine a feed's recording goes on under a new id (REC stays on).
    pub async fn recording_continued(&self, from: crate::recorder::RecordingId, to: crate::recorder::RecordingId) {
        let _ = self.commands.send(Command::RecordingMoved { from, to: Some(to) }).await;
    }

    /// Asks the publisher of a recorded feed for a keyframe (within the viewers' throttle).
    pub async fn recording_keyframe(&self, id: crate::recorder::RecordingId) {
        let _ = self.commands.send(Command::RecordingKeyframe { id }).await;
    }

    async fn ask<T>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, SfuError> {
        let (reply, answer) = oneshot::channel();
        let send = self.commands.send(command(reply));
        match tokio::time::timeout(REPLY_TIMEOUT, async {
            send.await.map_err(|_| SfuError::Unavailable)?;
            answer.await.map_err(|_| SfuError::Unavailable)
        })
        .await
        {
            Ok(result) => result,
            Err(_) => Err(SfuError::Unavailable),
        }
    }
}
