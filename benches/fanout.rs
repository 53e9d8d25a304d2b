//! Fan-out benchmark: one publisher, N viewers, every one a full WebRTC peer over loopback.
//!
//! ```text
//! cargo bench --bench fanout -- --viewers 150 --seconds 20
//! cargo bench --bench fanout -- --viewers 100 --record
//! cargo bench --bench fanout -- --ramp [--viewers MAX]
//! cargo bench --bench fanout -- --url http://127.0.0.1:3000 --viewers 50
//! cargo bench --bench fanout -- --viewers 150 --simulcast [--layers h,m,l | auto]
//! ```
//!
//! It starts `ferrocast` (the release binary cargo built with it) as its own process with a fresh
//! data folder, pinned to CPU 0, and runs the load generator pinned to CPU 1, both inside a network
//! namespace that has only loopback (it re-runs itself under `unshare` when needed). The
//! publisher sends 720p30-sized VP8 at `--bitrate` (2.5 Mbit/s) with a keyframe every 2 s, plus
//! Opus; all viewers join at once, and once they show video (or after 5 s) the server's CPU and
//! the packets forwarded are measured for `--seconds`. With `--record` the publisher's token
//! records: the run then also checks that a recording was written (its size is in the figures).
//! With `--simulcast` the publisher sends three layers (the broadcaster's: 75 / 20 / 5 % of the
//! bitrate at full, ½ and ¼ size) and the viewers ask for the qualities of `--layers` in turn
//! (default `h,m,l`: a third each; `auto` follows each viewer's bandwidth estimate).
//! Prints a summary and, last, one JSON line.

#[allow(dead_code)] // shared with the `web` benchmark, which uses a part of it
mod loadgen;

use std::{
    process::ExitCode,
    rc::Rc,
    time::{Duration, Instant},
};

use loadgen::{
    accounting::{loss_pct, percentile},
    publisher::Publisher,
    server::{streamer, Server},
    system,
    viewer::{self, Shared, ViewerReport},
};
use serde_json::json;
use tokio::sync::watch;

const RAMP: &[usize] = &[25, 50, 100, 150, 200, 300, 400, 500, 600, 800, 1000];
const STREAM: &str = "bench";
/// How long viewers get to show their first frame before measuring starts anyway.
const JOIN_WINDOW: Duration = Duration::from_secs(5);
/// A generator using more of its core than this may under-read: the run is marked invalid.
const LOADGEN_SATURATED_PCT: f64 = 85.0;

struct Args {
    viewers: usize,
    seconds: u64,
    ramp: bool,
    url: Option<String>,
    bitrate: u64,
    record: bool,
    simulcast: bool,
    /// With `simulcast`: the qualities viewers ask for, viewer i the (i mod len)th.
    layers: Vec<&'static str>,
}

/// A `--layers` entry as the layer extension names it.
fn quality(name: &str) -> Result<&'static str, String> {
    match name {
        "h" | "high" => Ok("high"),
        "m" | "medium" => Ok("medium"),
        "l" | "low" => Ok("low"),
        "a" | "auto" => Ok("auto"),
        other => Err(format!("--layers: {other:?} is none of h, m, l, auto")),
    }
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        viewers: 100,
        seconds: 10,
        ramp: false,
        url: None,
        bitrate: 2_500_000,
        record: false,
        simulcast: false,
        layers: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--viewers" => args.viewers = value("--viewers")?.parse().map_err(|e| format!("--viewers: {e}"))?,
            "--seconds" => args.seconds = value("--seconds")?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--bitrate" => args.bitrate = value("--bitrate")?.parse().map_err(|e| format!("--bitrate: {e}"))?,
            "--url" => args.url = Some(value("--url")?),
            "--ramp" => args.ramp = true,
            "--record" => args.record = true,
            "--simulcast" => args.simulcast = true,
            "--layers" => args.layers = value("--layers")?.split(',').map(quality).collect::<Result<_, _>>()?,
            "--bench" => {} // cargo bench passes it
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.viewers == 0 || args.seconds == 0 {
        return Err("--viewers and --seconds must be at least 1".into());
    }
    if !args.layers.is_empty() && !args.simulcast {
        return Err("--layers needs --simulcast".into());
    }
    if args.simulcast && args.layers.is_empty() {
        args.layers = vec!["high", "medium", "low"];
    }
    Ok(args)
}

/// The figures of one run.
#[derive(Clone, Debug)]
struct Run {
    viewers: usize,
    seconds: u64,
    viewers_with_video: usize,
    errors: Vec<String>,
    packets_forwarded: u64,
    loss_pct_median: f64,
    loss_pct_worst: f64,
    freezes: u32,
    server_cpu_pct: Option<f64>,
    cpu_us_per_packet: Option<f64>,
    rss_kb_per_viewer: Option<f64>,
    ttff_ms_p50: Option<f64>,
    ttff_ms_p95: Option<f64>,
    latency_ms_p50: Option<f64>,
    latency_ms_p99: Option<f64>,
    loadgen_cpu_pct: f64,
    valid: bool,
    keyframes_asked: u64,
    /// With `--record`: the recording's status and bytes once the publisher stopped.
    recorded: Option<(String, u64)>,
}

impl Run {
    /// No loss to speak of, no freeze, everyone saw video.
    fn clean(&self) -> bool {
        self.valid && self.loss_pct_worst < 1.0 && self.freezes == 0 && self.viewers_with_video == self.viewers
    }

    fn json(&self) -> serde_json::Value {
        let round = |v: Option<f64>, places: i32| v.map(|v| (v * 10f64.powi(places)).round() / 10f64.powi(places));
        json!({
            "viewers": self.viewers,
            "seconds": self.seconds,
            "packets_forwarded": self.packets_forwarded,
            "loss_pct_median": round(Some(self.loss_pct_median), 3),
            "loss_pct_worst": round(Some(self.loss_pct_worst), 3),
            "freezes": self.freezes,
            "server_cpu_pct": round(self.server_cpu_pct, 1),
            "cpu_us_per_packet": round(self.cpu_us_per_packet, 2),
            "rss_kb_per_viewer": round(self.rss_kb_per_viewer, 1),
            "ttff_ms_p50": round(self.ttff_ms_p50, 1),
            "ttff_ms_p95": round(self.ttff_ms_p95, 1),
            "latency_ms_p50": round(self.latency_ms_p50, 3),
            "latency_ms_p99": round(self.latency_ms_p99, 3),
            "loadgen_cpu_pct": round(Some(self.loadgen_cpu_pct), 1),
            "valid": self.valid,
            "viewers_with_video": self.viewers_with_video,
            "recording_status": self.recorded.as_ref().map(|(status, _)| status),
            "recording_bytes": self.recorded.as_ref().map(|(_, bytes)| bytes),
        })
    }

    fn summary(&self) -> String {
        let f = |v: Option<f64>, unit: &str| v.map_or("n/a".to_owned(), |v| format!("{v:.2}{unit}"));
        format!(
            "{} viewers, {} s: {} packets forwarded, loss median {:.3} % worst {:.3} %, {} freezes, {}/{} with video\n  \
             server CPU {} ({} per packet), RSS {} per viewer\n  \
             first frame p50 {} p95 {}, latency p50 {} p99 {}\n  \
             load generator CPU {:.1} % ({}), {} keyframe requests reached the publisher{}",
            self.viewers,
            self.seconds,
            self.packets_forwarded,
            self.loss_pct_median,
            self.loss_pct_worst,
            self.freezes,
            self.viewers_with_video,
            self.viewers,
            f(self.server_cpu_pct, " %"),
            f(self.cpu_us_per_packet, " µs"),
            f(self.rss_kb_per_viewer, " kB"),
            f(self.ttff_ms_p50, " ms"),
            f(self.ttff_ms_p95, " ms"),
            f(self.latency_ms_p50, " ms"),
            f(self.latency_ms_p99, " ms"),
            self.loadgen_cpu_pct,
            if self.valid { "valid" } else { "SATURATED: figures invalid" },
            self.keyframes_asked,
            match &self.recorded {
                Some((status, bytes)) => format!("\n  recorded: {status}, {bytes} bytes"),
                None => String::new(),
            },
        )
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("fanout: {err}");
            return ExitCode::from(2);
        }
    };
    let server_cpu = match system::prepare_benchmark(args.url.is_some()) {
        Ok(cpu) => cpu,
        Err(err) => {
            eprintln!("fanout: {err}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let steps: Vec<usize> = if args.ramp {
        RAMP.iter().copied().filter(|&n| n <= args.viewers.max(RAMP[0])).collect()
    } else {
        vec![args.viewers]
    };
    let mut last_clean: Option<Run> = None;
    let mut last: Option<Run> = None;
    for &viewers in &steps {
        let run = match runtime.block_on(tokio::task::LocalSet::new().run_until(run_once(&args, viewers, server_cpu))) {
            Ok(run) => run,
            Err(err) => {
                eprintln!("fanout: {viewers} viewers: {err}");
                return ExitCode::FAILURE;
            }
        };
        println!("{}", run.summary());
        for error in run.errors.iter().take(5) {
            println!("  viewer error: {error}");
        }
        let clean = run.clean();
        last = Some(run.clone());
        if clean {
            last_clean = Some(run);
        } else if args.ramp {
            println!("  (loss ≥ 1 %, a freeze, a viewer without video or a saturated generator: the ramp stops here)");
            break;
        }
    }
    let Some(last) = last else { return ExitCode::FAILURE };
    // No viewer saw a frame, or `--record` wrote no recording: the pipeline is broken, not slow.
    let broken = last.viewers_with_video == 0 || last.recorded.as_ref().is_some_and(|(status, _)| status != "complete");
    let mut json = if args.ramp { last_clean.clone().unwrap_or(last).json() } else { last.json() };
    json["simulcast"] = json!(args.simulcast);
    json["layers"] = json!(args.layers);
    if args.ramp {
        json["ramp_max_viewers"] = json!(last_clean.map_or(0, |run| run.viewers));
    }
    println!("{json}");
    if broken {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn run_once(args: &Args, viewers: usize, server_cpu: Option<usize>) -> std::io::Result<Run> {
    let server = match &args.url {
        Some(url) => Server::external(url)?,
        None => Server::start(server_cpu, &["--max-viewers-per-stream", "5000", "--max-viewers", "5000"])?,
    };
    let account = streamer(&server, STREAM, args.record).await?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().map_err(std::io::Error::other)?;

    let (stop_publisher, publisher_stop) = watch::channel(false);
    let publisher =
        Publisher::connect(&http, &server.url(&format!("/whip/{STREAM}")), &account.token, args.simulcast).await?;
    let publisher_url = publisher.session_url.clone();
    let publishing = tokio::task::spawn_local(publisher.run(args.bitrate, publisher_stop));
    // Let the stream settle before the 0-viewer memory baseline.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rss_baseline = server.pid().and_then(|pid| system::rss_kb(pid).ok());

    let shared = Rc::new(Shared::default());
    let (stop_viewers, viewer_stop) = watch::channel(false);
    let whep_url = server.url(&format!("/whep/{}/{STREAM}", account.account));
    // Viewers come from many loopback addresses, a few per address as behind a NAT: the server
    // lets each address have only so many viewers connecting at once.
    let per_address = ferrocast::sfu::PENDING_VIEWERS_PER_ADDRESS / 2;
    let clients = (0..viewers.div_ceil(per_address))
        .map(|i| {
            let address = std::net::IpAddr::from([127, 1, (i / 250) as u8, (i % 250) as u8 + 1]);
            reqwest::Client::builder().local_address(address).build().map_err(std::io::Error::other)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let watching: Vec<_> = (0..viewers)
        .map(|i| {
            let http = clients[i / per_address].clone();
            let quality = (!args.layers.is_empty()).then(|| args.layers[i % args.layers.len()]);
            tokio::task::spawn_local(viewer::watch(
                http,
                whep_url.clone(),
                quality,
                viewer_stop.clone(),
                shared.clone(),
            ))
        })
        .collect();
    let join_deadline = Instant::now() + JOIN_WINDOW;
    while shared.first_frames.get() < viewers && Instant::now() < join_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The measured window.
    let me = std::process::id();
    let started = Instant::now();
    let server_cpu_start = server.pid().and_then(|pid| system::cpu_time(pid).ok());
    let own_cpu_start = system::cpu_time(me)?;
    let packets_start = shared.packets.get();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let elapsed = started.elapsed();
    let server_cpu_end = server.pid().and_then(|pid| system::cpu_time(pid).ok());
    let own_cpu = system::cpu_time(me)?.saturating_sub(own_cpu_start);
    let packets_forwarded = shared.packets.get() - packets_start;
    let rss_end = server.pid().and_then(|pid| system::rss_kb(pid).ok());

    // Stop the source first so the last packets can still be repaired, then the viewers.
    let _ = stop_publisher.send(true);
    let publisher_stats = publishing.await.map_err(std::io::Error::other)??;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = stop_viewers.send(true);
    let mut reports: Vec<ViewerReport> = Vec::with_capacity(viewers);
    for task in watching {
        reports.push(task.await.map_err(std::io::Error::other)?);
    }
    loadgen::signaling::delete(&http, &publisher_url).await;
    let recorded = if args.record { Some(recording_written(&server, &account).await) } else { None };

    let server_cpu = match (server_cpu_start, server_cpu_end) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let mut run = figures(
        viewers,
        args.seconds,
        elapsed,
        reports,
        packets_forwarded,
        server_cpu,
        own_cpu,
        rss_baseline,
        rss_end,
        publisher_stats.keyframes_asked,
    );
    if let Some((status, bytes)) = &recorded {
        if status != "complete" || *bytes == 0 {
            run.errors.push(format!("the recording is {status} with {bytes} bytes"));
        }
    }
    run.recorded = recorded;
    Ok(run)
}

/// The broadcast's recording once it is finished (waits up to 5 s): its status and size.
async fn recording_written(server: &Server, account: &loadgen::server::Streamer) -> (String, u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let listed: Option<serde_json::Value> = match account.client.get(server.url("/api/v1/recordings")).send().await
        {
            Ok(response) => response.json().await.ok(),
            Err(_) => None,
        };
        let first = listed.as_ref().and_then(|list| list.get(0));
        let status = first.and_then(|r| r["status"].as_str()).unwrap_or("missing").to_owned();
        let bytes = first.and_then(|r| r["bytes"].as_u64()).unwrap_or(0);
        if status != "recording" || Instant::now() > deadline {
            return (status, bytes);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[allow(clippy::too_many_arguments)]
fn figures(
    viewers: usize,
    seconds: u64,
    elapsed: Duration,
    reports: Vec<ViewerReport>,
    packets_forwarded: u64,
    server_cpu: Option<Duration>,
    own_cpu: Duration,
    rss_baseline: Option<u64>,
    rss_end: Option<u64>,
    keyframes_asked: u64,
) -> Run {
    let mut losses: Vec<f64> = reports
        .iter()
        .map(|r| loss_pct(r.video.lost() + r.audio.lost(), r.video.expected() + r.audio.expected()))
        .collect();
    losses.sort_by(f64::total_cmp);
    let mut ttff: Vec<f64> =
        reports.iter().filter_map(|r| r.time_to_first_frame).map(|d| d.as_secs_f64() * 1000.0).collect();
    ttff.sort_by(f64::total_cmp);
    let mut latencies: Vec<u32> = reports.iter().flat_map(|r| r.latencies_us.iter().copied()).collect();
    latencies.sort_unstable();
    let ms = |us: Option<u32>| us.map(|us| us as f64 / 1000.0);
    let wall = elapsed.as_secs_f64();
    let loadgen_cpu_pct = own_cpu.as_secs_f64() * 100.0 / wall;
    Run {
        viewers,
        seconds,
        viewers_with_video: ttff.len(),
        errors: reports.iter().filter_map(|r| r.error.clone()).collect(),
        packets_forwarded,
        loss_pct_median: percentile(&losses, 50.0).unwrap_or(0.0),
        loss_pct_worst: losses.last().copied().unwrap_or(0.0),
        freezes: reports.iter().map(|r| r.freezes).sum(),
        server_cpu_pct: server_cpu.map(|cpu| cpu.as_secs_f64() * 100.0 / wall),
        cpu_us_per_packet: server_cpu
            .filter(|_| packets_forwarded > 0)
            .map(|cpu| cpu.as_secs_f64() * 1e6 / packets_forwarded as f64),
        rss_kb_per_viewer: match (rss_baseline, rss_end) {
            (Some(base), Some(end)) => Some(end.saturating_sub(base) as f64 / viewers as f64),
            _ => None,
        },
        ttff_ms_p50: percentile(&ttff, 50.0),
        ttff_ms_p95: percentile(&ttff, 95.0),
        latency_ms_p50: ms(percentile(&latencies, 50.0)),
        latency_ms_p99: ms(percentile(&latencies, 99.0)),
        loadgen_cpu_pct,
        valid: loadgen_cpu_pct < LOADGEN_SATURATED_PCT,
        keyframes_asked,
        recorded: None,
    }
}
