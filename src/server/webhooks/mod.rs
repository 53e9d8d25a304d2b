//! Webhooks (README "Webhooks"): an account's endpoints hear of its streams starting and ending,
//! first and last viewers, finished recordings and refused publishers. Events are queued in
//! SQLite, one delivery per endpoint that wants them, and [`sender`] sends them, signed
//! ([`signature`]), in order, retrying for a day; a restart resumes the queue.
//!
//! Where events come from: the live board offers stream changes to a bounded queue without
//! waiting ([`crate::sfu::Board`]); [`listen`] turns them into deliveries. Recordings and WHIP
//! refusals call [`Webhooks::emit`] from their own tasks.

pub mod endpoints;
pub mod events;
pub mod sender;
pub mod signature;

use std::sync::Arc;

use sqlx::SqlitePool;
use tokio::sync::{mpsc, Notify};

use crate::{db, sfu::StreamEvent};
pub use events::{Event, EventType};

/// Queues events for the endpoints that want them and wakes the sender. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    pool: SqlitePool,
    wake: Arc<Notify>,
}

impl Webhooks {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool, wake: Arc::new(Notify::new()) }
    }

    /// What the sender waits on.
    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Queues `event` for every enabled endpoint of the account that asked for its type.
    /// Errors are logged: an event lost to a database error must not fail its cause.
    pub async fn emit(&self, account: Owner<'_>, event: &Event) {
        if let Err(err) = self.queue(account, event).await {
            tracing::error!(%err, event = event.kind.as_str(), "webhooks: queueing an event");
        }
    }

    async fn queue(&self, account: Owner<'_>, event: &Event) -> Result<(), sqlx::Error> {
        let endpoints = match account {
            Owner::PublicId(public_id) => db::webhooks::endpoints_of_public_id(&self.pool, public_id).await?,
            Owner::Id(id) => db::webhooks::endpoints(&self.pool, id).await?.into_iter().filter(|e| e.enabled).collect(),
        };
        let wanted: Vec<_> = endpoints.iter().filter(|e| endpoints::wants(&e.events, event.kind)).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let body = event.body();
        for endpoint in wanted {
            db::webhooks::enqueue(
                &self.pool,
                &endpoint.id,
                &event.id,
                event.kind.as_str(),
                &body,
                crate::db::now_unix_ms(),
            )
            .await?;
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Queues `event` for one endpoint whatever it subscribed to (the test event, a resend).
    pub async fn queue_for(
        &self,
        endpoint_id: &str,
        event_id: &str,
        kind: &str,
        body: &str,
    ) -> Result<db::webhooks::DeliveryRow, sqlx::Error> {
        let row =
            db::webhooks::enqueue(&self.pool, endpoint_id, event_id, kind, body, crate::db::now_unix_ms()).await?;
        self.wake.notify_one();
        Ok(row)
    }
}

/// Whose endpoints hear an event.
#[derive(Clone, Copy, Debug)]
pub enum Owner<'a> {
    /// As URLs and the SFU name accounts.
    PublicId(&'a str),
    /// The database's row id.
    Id(i64),
}

/// Turns the live board's stream changes into deliveries until the board goes.
pub async fn listen(webhooks: Webhooks, mut changes: mpsc::Receiver<StreamEvent>) {
    while let Some(change) = changes.recv().await {
        let event = Event::of_stream(&change.stream, &change.change, change.at_ms);
        webhooks.emit(Owner::PublicId(&change.stream.account), &event).await;
    }
}
