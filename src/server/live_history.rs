//! The Live page's graphs (README "Live page"): ten minutes of every live source's figures, and
//! for the operator's page an hour of the instance's totals and each account's traffic, sampled
//! every five seconds from the SFU's snapshot of all streams (one command to the engine, never the
//! packet path). The graphs are kept in memory (a restart starts them afresh); the traffic goes to
//! the database, by account and hour.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::watch;

use crate::{
    model::{InstanceSample, LiveSample},
    sfu::{SfuHandle, StreamInfo},
};

pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Ten minutes of samples.
pub const KEPT: usize = 120;

/// `(account, stream, source)`; `None` is the main source.
type SourceKey = (String, String, Option<String>);

/// An hour of the instance's totals (the operator's page).
pub const KEPT_FOR_INSTANCE: usize = 720;

#[derive(Default)]
pub struct LiveHistory {
    sources: Mutex<HashMap<SourceKey, VecDeque<LiveSample>>>,
    instance: Mutex<VecDeque<InstanceSample>>,
}

impl LiveHistory {
    /// Adds a sample of every live source in `streams` taken at `now` (Unix seconds), and forgets
    /// sources with no sample in the last ten minutes.
    pub fn record(&self, streams: &[StreamInfo], now: i64) {
        let mut sources = self.sources.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for stream in streams.iter().filter(|s| s.live) {
            for source in stream.sources.iter().filter(|s| s.active) {
                let best = source.layers.iter().find(|l| l.active);
                let sample = LiveSample {
                    at: now,
                    bitrate_bps: source.bitrate_bps,
                    fps: best.map_or(0, |l| l.fps),
                    width: best.and_then(|l| l.width).unwrap_or(0),
                    height: best.and_then(|l| l.height).unwrap_or(0),
                    viewers: stream.viewers,
                };
                let key = (stream.account_id.clone(), stream.stream_name.clone(), source.source_id.clone());
                let samples = sources.entry(key).or_default();
                if samples.len() == KEPT {
                    samples.pop_front();
                }
                samples.push_back(sample);
            }
        }
        let oldest = now - (KEPT as u64 * SAMPLE_EVERY.as_secs()) as i64;
        sources.retain(|_, samples| samples.back().is_some_and(|last| last.at > oldest));
        drop(sources);
        let live = || streams.iter().filter(|s| s.live);
        let total = InstanceSample {
            at: now,
            viewers: live().map(|s| s.viewers as u32).sum(),
            egress_bps: live().map(|s| s.egress_bps).sum(),
        };
        let mut instance = self.instance.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if instance.len() == KEPT_FOR_INSTANCE {
            instance.pop_front();
        }
        instance.push_back(total);
    }

    /// The instance's totals over the last hour, oldest first.
    pub fn of_instance(&self) -> Vec<InstanceSample> {
        let instance = self.instance.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        instance.iter().copied().collect()
    }

    /// One source's samples, oldest first.
    pub fn of(&self, account: &str, stream: &str, source: Option<&str>) -> Vec<LiveSample> {
        let sources = self.sources.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = (account.to_owned(), stream.to_owned(), source.map(str::to_owned));
        sources.get(&key).map(|samples| samples.iter().copied().collect()).unwrap_or_default()
    }
}

/// What each account's live streams took in and sent out over one sampling period (their rates
/// now × the period), in bytes: `(account public id, published, viewed)`, one entry per account.
pub fn traffic_of_sample(streams: &[StreamInfo]) -> Vec<(&str, u64, u64)> {
    let seconds = SAMPLE_EVERY.as_secs();
    let mut traffic: Vec<(&str, u64, u64)> = Vec::new();
    for stream in streams.iter().filter(|s| s.live) {
        let (published, viewed) = (stream.bitrate_bps * seconds / 8, stream.egress_bps * seconds / 8);
        match traffic.iter_mut().find(|(account, _, _)| *account == stream.account_id) {
            Some(entry) => {
                entry.1 += published;
                entry.2 += viewed;
            }
            None => traffic.push((&stream.account_id, published, viewed)),
        }
    }
    traffic
}

/// Samples until shutdown; each sample's traffic is added to the accounts' hours in the database.
pub async fn sample(
    history: Arc<LiveHistory>,
    sfu: SfuHandle,
    pool: sqlx::SqlitePool,
    mut shutdown: watch::Receiver<bool>,
) {
    // A connection of its own, taken once: the sampler's writes never make the request pool open
    // more connections (and file descriptors) under load.
    let mut writer = match pool.acquire().await {
        Ok(connection) => Some(connection.detach()),
        Err(err) => {
            tracing::warn!(%err, "no database connection for the accounts' traffic; it is not counted");
            None
        }
    };
    drop(pool);
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Ok(streams) = sfu.streams(None).await {
            let now = crate::db::now_unix();
            history.record(&streams, now);
            let traffic = traffic_of_sample(&streams);
            // Best effort: a database that cannot write (a full disk) loses a few seconds of
            // the operator's figures, nothing else.
            if let (Some(connection), false) = (writer.as_mut(), traffic.is_empty()) {
                if let Err(err) = crate::db::accounts::add_traffic(connection, &traffic, now).await {
                    tracing::warn!(%err, "cannot note the accounts' traffic");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_gives_each_account_its_streams_traffic_over_the_period() {
        // 800 kbit/s in with two viewers, and 400 kbit/s with none: 5 s is 750 kB in, 1 MB out.
        let mut quiet = stream("quiet", 400_000, 0);
        quiet.egress_bps = 0;
        let mut off_air = stream("off", 1_000_000, 3);
        off_air.live = false;
        let streams = [stream("show", 800_000, 2), quiet, off_air];
        assert_eq!(traffic_of_sample(&streams), vec![("acct", 750_000, 1_000_000)]);
        assert!(traffic_of_sample(&[]).is_empty());
    }
    use crate::sfu::{api::SourceHealth, SourceInfo};

    fn stream(name: &str, bitrate_bps: u64, viewers: usize) -> StreamInfo {
        StreamInfo {
            account_id: "acct".into(),
            stream_name: name.into(),
            live: true,
            viewers,
            started_at: Some(1),
            bitrate_bps,
            egress_bps: bitrate_bps * viewers as u64,
            recording: false,
            sources: vec![SourceInfo {
                source_id: None,
                active: true,
                started_at: 1,
                bitrate_bps,
                recording: false,
                tracks: Vec::new(),
                layers: Vec::new(),
                token_id: "t".into(),
                health: SourceHealth { rtt_ms: None, loss_percent: None, nacks: 0, keyframe_requests: 0 },
            }],
            viewers_by_pass: Vec::new(),
            viewers_by_site: Vec::new(),
        }
    }

    #[test]
    fn ten_minutes_are_kept_and_gone_sources_forgotten() {
        let history = LiveHistory::default();
        for i in 0..(KEPT as i64 + 10) {
            history.record(&[stream("show", i as u64, 2)], 1_000 + i * 5);
        }
        let samples = history.of("acct", "show", None);
        assert_eq!(samples.len(), KEPT);
        assert_eq!(samples[0].bitrate_bps, 10, "the oldest went first");
        assert_eq!(samples.last().unwrap().viewers, 2);
        assert!(history.of("acct", "show", Some("cam2")).is_empty());
        // Ten minutes without the stream: it is forgotten.
        let later = 1_000 + (KEPT as i64 + 10) * 5 + 601;
        history.record(&[stream("other", 1, 0)], later);
        assert!(history.of("acct", "show", None).is_empty());
        assert_eq!(history.of("acct", "other", None).len(), 1);
    }
}
