//! The Live page's graphs (README "Live page"): ten minutes of every live source's figures (and
//! an hour of the instance's totals for the operator's page),
//! sampled every five seconds from the SFU's snapshot of all streams (one command to the engine,
//! never the packet path) and kept in memory: a restart starts the graphs afresh.

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

/// Hours of each account's traffic kept (the operator's "last 24 h").
pub const USAGE_HOURS: i64 = 24;

#[derive(Default)]
pub struct LiveHistory {
    sources: Mutex<HashMap<SourceKey, VecDeque<LiveSample>>>,
    instance: Mutex<VecDeque<InstanceSample>>,
    /// Per account (public id): bytes published and sent to viewers, by hour.
    usage: Mutex<HashMap<String, VecDeque<HourOfTraffic>>>,
}

/// One hour of one account's traffic, estimated from the rates sampled every five seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct HourOfTraffic {
    /// Unix seconds / 3600.
    hour: i64,
    published: u64,
    viewed: u64,
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
        drop(instance);
        self.count_traffic(streams, now);
    }

    /// Adds what each account's live streams took in and sent out since the last sample (their
    /// rates now × the sampling period) to its hour, and forgets hours older than a day.
    fn count_traffic(&self, streams: &[StreamInfo], now: i64) {
        let hour = now.div_euclid(3600);
        let seconds = SAMPLE_EVERY.as_secs();
        let mut usage = self.usage.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for stream in streams.iter().filter(|s| s.live) {
            let hours = usage.entry(stream.account_id.clone()).or_default();
            if hours.back().is_none_or(|last| last.hour != hour) {
                hours.push_back(HourOfTraffic { hour, ..Default::default() });
            }
            if let Some(current) = hours.back_mut() {
                current.published += stream.bitrate_bps * seconds / 8;
                current.viewed += stream.egress_bps * seconds / 8;
            }
        }
        for hours in usage.values_mut() {
            while hours.front().is_some_and(|h| h.hour <= hour - USAGE_HOURS) {
                hours.pop_front();
            }
        }
        usage.retain(|_, hours| !hours.is_empty());
    }

    /// An account's bytes (published, sent to viewers) over the last 24 hours, estimated.
    pub fn traffic_of(&self, account: &str) -> (u64, u64) {
        let usage = self.usage.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        usage
            .get(account)
            .map_or((0, 0), |hours| hours.iter().fold((0, 0), |(p, v), h| (p + h.published, v + h.viewed)))
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

/// Samples until shutdown.
pub async fn sample(history: Arc<LiveHistory>, sfu: SfuHandle, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Ok(streams) = sfu.streams(None).await {
            history.record(&streams, crate::db::now_unix());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_adds_up_by_hour_and_a_day_is_kept() {
        let history = LiveHistory::default();
        // 800 kbit/s in, two viewers: 5 s is 500 kB in and 1 MB out.
        let live = [stream("show", 800_000, 2)];
        let start = 100 * 3600;
        history.record(&live, start);
        history.record(&live, start + 5);
        assert_eq!(history.traffic_of("acct"), (1_000_000, 2_000_000));
        assert_eq!(history.traffic_of("nobody"), (0, 0));
        // The next hour adds to a bucket of its own; 24 hours later the first is forgotten.
        history.record(&live, start + 3600);
        assert_eq!(history.traffic_of("acct"), (1_500_000, 3_000_000));
        history.record(&[], start + 24 * 3600);
        assert_eq!(history.traffic_of("acct"), (500_000, 1_000_000));
        history.record(&[], start + 25 * 3600);
        assert_eq!(history.traffic_of("acct"), (0, 0));
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
