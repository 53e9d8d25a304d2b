//! Soak benchmark: hours of a busy day in minutes, then a check that nothing leaked.
//!
//! ```text
//! cargo bench --bench soak -- --minutes 30
//! cargo bench --bench soak -- --seconds 20      (what the test command runs)
//! ```
//!
//! It starts `ferrocast` (the binary cargo built with it) with a fresh data folder inside a
//! loopback-only network namespace and, for the whole run, keeps:
//! * a publisher on the main source, **replaced** by a new one every 30 s (the new one takes over
//!   at its first keyframe; the old one is then deleted);
//! * a second source `cam2` **added and removed** every 10 s;
//! * viewers **joining and leaving** continuously (`--joins-per-second`, 20 by default), each
//!   watching 1–4 s, from many loopback addresses;
//! * **SSE feeds** of the stream opened and dropped (5 per second);
//! * **trickle PATCHes** on viewer sessions that never connect, then deleted (4 per second).
//!
//! Afterwards it checks what a server that runs for weeks needs: the server's resident memory
//! at most 10 % above its value after the first minute (a third of the run, for runs under three
//! minutes), its open file descriptors and live tasks back to their baseline once the load is
//! gone, and no viewer that had started playing frozen for more than 1 s. Prints a summary, then
//! one JSON line; exits non-zero when a check fails.

#[allow(dead_code)] // shared with the other benchmarks, which use other parts of it
mod loadgen;

use std::{
    cell::{Cell, RefCell},
    process::ExitCode,
    rc::Rc,
    time::{Duration, Instant},
};

use loadgen::{
    publisher::Publisher,
    server::{streamer, Server, Streamer},
    system,
    viewer::{self, Shared, ViewerReport},
};
use serde_json::json;
use tokio::{sync::watch, task::spawn_local};

const STREAM: &str = "soak";
const REPLACE_EVERY: Duration = Duration::from_secs(30);
const SOURCE_TOGGLE_EVERY: Duration = Duration::from_secs(10);
const FEEDS_PER_SECOND: u32 = 5;
/// Under the per-address offer rate the server allows (they all come from one address).
const TRICKLES_PER_SECOND: u32 = 4;
/// The longest a playing viewer may go without a new frame.
const FREEZE_LIMIT: Duration = Duration::from_secs(1);
/// Memory may move this much between the reference point and the end.
const RSS_TOLERANCE: f64 = 0.10;
/// Viewers per client address (the server limits connecting viewers per address).
const VIEWERS_PER_ADDRESS: usize = 4;
const BITRATE: u64 = 1_000_000;

struct Args {
    seconds: u64,
    joins_per_second: u32,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { seconds: 60, joins_per_second: 20 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--minutes" => {
                args.seconds = value("--minutes")?.parse::<u64>().map_err(|e| format!("--minutes: {e}"))? * 60
            }
            "--seconds" => args.seconds = value("--seconds")?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--joins-per-second" => {
                args.joins_per_second =
                    value("--joins-per-second")?.parse().map_err(|e| format!("--joins-per-second: {e}"))?
            }
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !(10..=24 * 3600).contains(&args.seconds) || !(1..=200).contains(&args.joins_per_second) {
        return Err("the run is 10 s to 24 h, with 1 to 200 joins per second".into());
    }
    Ok(args)
}

/// What the server process looks like at one moment.
#[derive(Clone, Copy, Debug, Default)]
struct Census {
    rss_kb: u64,
    /// Open file descriptors but the database's: the SQLite pool opens connections (its file,
    /// WAL and shared memory) up to its bound as queries overlap and keeps them, which is not a
    /// leak; sockets and other files are what must come back.
    fds: usize,
    tasks: u64,
}

fn census(server: &Server, metrics: Option<&str>) -> Census {
    let Some(pid) = server.pid() else { return Census::default() };
    let tasks = metrics
        .and_then(|text| text.lines().find(|l| l.starts_with("ferrocast_tasks_alive ")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64);
    Census {
        rss_kb: system::rss_kb(pid).unwrap_or(0),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| {
            let database = |path: &std::path::Path| {
                path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(ferrocast::db::DATABASE_FILE))
            };
            dir.flatten().filter(|fd| std::fs::read_link(fd.path()).map_or(true, |target| !database(&target))).count()
        }),
        tasks,
    }
}

async fn metrics_text(http: &reqwest::Client, server: &Server) -> Option<String> {
    http.get(server.url("/metrics")).send().await.ok()?.text().await.ok()
}

#[derive(Default)]
struct Tally {
    joins: Cell<u64>,
    join_errors: Cell<u64>,
    played: Cell<u64>,
    frozen: RefCell<Vec<Duration>>,
    longest_gap: Cell<Duration>,
    feeds: Cell<u64>,
    feed_errors: Cell<u64>,
    trickles: Cell<u64>,
    trickle_errors: Cell<u64>,
    replacements: Cell<u64>,
    source_toggles: Cell<u64>,
    errors: RefCell<Vec<String>>,
}

impl Tally {
    fn error(&self, what: String) {
        let mut errors = self.errors.borrow_mut();
        if errors.len() < 20 {
            errors.push(what);
        }
    }

    fn viewer(&self, report: ViewerReport) {
        if let Some(error) = report.error {
            self.join_errors.set(self.join_errors.get() + 1);
            self.error(format!("viewer: {error}"));
            return;
        }
        if report.time_to_first_frame.is_some() {
            self.played.set(self.played.get() + 1);
        }
        self.longest_gap.set(self.longest_gap.get().max(report.longest_gap));
        if report.longest_gap > FREEZE_LIMIT {
            self.frozen.borrow_mut().push(report.longest_gap);
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("soak: {err}");
            return ExitCode::from(2);
        }
    };
    let server_cpu = match system::prepare_benchmark(false) {
        Ok(cpu) => cpu,
        Err(err) => {
            eprintln!("soak: {err}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(tokio::task::LocalSet::new().run_until(soak(&args, server_cpu))) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("soak: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn soak(args: &Args, server_cpu: Option<usize>) -> std::io::Result<bool> {
    let server = Server::start(server_cpu, &[])?;
    let mut account = streamer(&server, STREAM, false).await?;
    // Sources other than main need a token with the multisource flag.
    let token = json!({ "label": "soak", "streams": [STREAM], "multisource": true });
    let created =
        account.client.post(server.url("/api/v1/tokens")).json(&token).send().await.map_err(std::io::Error::other)?;
    let created: serde_json::Value = created.json().await.map_err(std::io::Error::other)?;
    account.token = created["secret"].as_str().ok_or_else(|| std::io::Error::other("no token secret"))?.to_owned();
    let http = reqwest::Client::builder().build().map_err(std::io::Error::other)?;
    let whip = server.url(&format!("/whip/{STREAM}"));
    let whep = server.url(&format!("/whep/{}/{STREAM}", account.account));

    // The first publisher, then the baseline: one live stream, nobody watching.
    let (first, first_stop) = start_publisher(&http, &whip, &account).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let baseline = census(&server, metrics_text(&http, &server).await.as_deref());

    let tally = Rc::new(Tally::default());
    let run_for = Duration::from_secs(args.seconds);
    let reference_at = if args.seconds >= 180 { Duration::from_secs(60) } else { run_for / 3 };
    let (stop_load, load_stopped) = watch::channel(false);
    let started = Instant::now();

    let publishers = spawn_local(keep_replacing_publisher(
        http.clone(),
        whip.clone(),
        account.clone(),
        (first, first_stop),
        load_stopped.clone(),
        tally.clone(),
    ));
    let cam2 = spawn_local(keep_toggling_source(
        http.clone(),
        whip.clone(),
        account.clone(),
        load_stopped.clone(),
        tally.clone(),
    ));
    let viewers =
        spawn_local(keep_viewers_coming(whep.clone(), args.joins_per_second, load_stopped.clone(), tally.clone()));
    let feeds = spawn_local(keep_feeds_coming(
        server.url(&format!("/api/v1/streams/{}/{STREAM}/events", account.account)),
        load_stopped.clone(),
        tally.clone(),
    ));
    let trickles = spawn_local(keep_trickling(whep.clone(), load_stopped.clone(), tally.clone()));

    tokio::time::sleep(reference_at).await;
    let reference = census(&server, metrics_text(&http, &server).await.as_deref());
    println!("reference after {:?}: {reference:?}", reference_at);
    let mut peak_rss = reference.rss_kb;
    while started.elapsed() < run_for {
        tokio::time::sleep(Duration::from_secs(5).min(run_for.saturating_sub(started.elapsed()))).await;
        peak_rss = peak_rss.max(census(&server, None).rss_kb);
    }
    let _ = stop_load.send(true);
    for task in [viewers, feeds, trickles, cam2] {
        task.await.map_err(std::io::Error::other)?;
    }
    let last_publisher = publishers.await.map_err(std::io::Error::other)?;
    // Let the server let go of what the load left (sessions time out, feeds close).
    tokio::time::sleep(Duration::from_secs(12)).await;
    let after = census(&server, metrics_text(&http, &server).await.as_deref());
    if let Some((session, stop)) = last_publisher {
        let _ = stop.send(true);
        loadgen::signaling::delete(&http, &session).await;
    }

    let rss_change = (after.rss_kb as f64 - reference.rss_kb as f64) / reference.rss_kb.max(1) as f64;
    let frozen = tally.frozen.borrow().len();
    let checks = [
        ("memory at most 10 % above the reference", rss_change <= RSS_TOLERANCE),
        ("file descriptors back to baseline", after.fds <= baseline.fds + 2),
        ("tasks back to baseline", after.tasks <= baseline.tasks + 2),
        ("no playing viewer frozen over 1 s", frozen == 0),
        ("viewers joined and played", tally.played.get() > 0 && tally.join_errors.get() * 100 <= tally.joins.get()),
        ("feeds and trickles answered", tally.feed_errors.get() == 0 && tally.trickle_errors.get() == 0),
    ];
    let seconds = run_for.as_secs_f64();
    println!(
        "soak {:.0} s: {} joins ({:.1}/s, {} played, {} failed), {} feeds, {} trickles, {} replacements, {} source changes",
        seconds,
        tally.joins.get(),
        tally.joins.get() as f64 / seconds,
        tally.played.get(),
        tally.join_errors.get(),
        tally.feeds.get(),
        tally.trickles.get(),
        tally.replacements.get(),
        tally.source_toggles.get()
    );
    println!(
        "server: RSS {} kB at the reference, {} kB peak, {} kB after ({:+.1} %); fds {} → {}; tasks {} → {}; longest gap {} ms",
        reference.rss_kb,
        peak_rss,
        after.rss_kb,
        rss_change * 100.0,
        baseline.fds,
        after.fds,
        baseline.tasks,
        after.tasks,
        tally.longest_gap.get().as_millis()
    );
    for error in tally.errors.borrow().iter() {
        println!("  error: {error}");
    }
    let mut passed = true;
    for (check, ok) in checks {
        println!("  {} {check}", if ok { "ok  " } else { "FAIL" });
        passed &= ok;
    }
    println!(
        "{}",
        json!({
            "seconds": seconds.round(),
            "joins": tally.joins.get(),
            "joins_per_second": (tally.joins.get() as f64 / seconds * 10.0).round() / 10.0,
            "viewers_played": tally.played.get(),
            "viewer_errors": tally.join_errors.get(),
            "frozen_viewers": frozen,
            "longest_gap_ms": tally.longest_gap.get().as_millis() as u64,
            "feeds": tally.feeds.get(),
            "trickles": tally.trickles.get(),
            "replacements": tally.replacements.get(),
            "rss_reference_kb": reference.rss_kb,
            "rss_peak_kb": peak_rss,
            "rss_after_kb": after.rss_kb,
            "fds_baseline": baseline.fds,
            "fds_after": after.fds,
            "tasks_baseline": baseline.tasks,
            "tasks_after": after.tasks,
            "passed": passed,
        })
    );
    Ok(passed)
}

type Running = (String, watch::Sender<bool>);

/// Connects a publisher to `url` and runs it until its sender says stop; answers its session.
async fn start_publisher(http: &reqwest::Client, url: &str, account: &Streamer) -> std::io::Result<Running> {
    let publisher = Publisher::connect(http, url, &account.token, false).await?;
    let session = publisher.session_url.clone();
    let (stop, stopped) = watch::channel(false);
    spawn_local(async move {
        let _ = publisher.run(BITRATE, stopped).await;
    });
    Ok((session, stop))
}

/// Every 30 s a new publisher takes over the main source; the old one is deleted once it has.
async fn keep_replacing_publisher(
    http: reqwest::Client,
    whip: String,
    account: Streamer,
    first: Running,
    mut stop: watch::Receiver<bool>,
    tally: Rc<Tally>,
) -> Option<Running> {
    let mut current = first;
    loop {
        if tokio::time::timeout(REPLACE_EVERY, stop.wait_for(|s| *s)).await.is_ok() {
            return Some(current);
        }
        match start_publisher(&http, &whip, &account).await {
            Ok(next) => {
                // The replacement takes over at its first keyframe (at most 2 s away).
                tokio::time::sleep(Duration::from_secs(3)).await;
                let (session, old) = std::mem::replace(&mut current, next);
                let _ = old.send(true);
                loadgen::signaling::delete(&http, &session).await;
                tally.replacements.set(tally.replacements.get() + 1);
            }
            Err(err) => tally.error(format!("replacement publisher: {err}")),
        }
    }
}

/// Source `cam2` comes for 10 s and goes for 10 s.
async fn keep_toggling_source(
    http: reqwest::Client,
    whip: String,
    account: Streamer,
    mut stop: watch::Receiver<bool>,
    tally: Rc<Tally>,
) {
    let url = format!("{whip}?sourceId=cam2");
    let mut running: Option<Running> = None;
    loop {
        if tokio::time::timeout(SOURCE_TOGGLE_EVERY, stop.wait_for(|s| *s)).await.is_ok() {
            break;
        }
        match running.take() {
            Some((session, stop)) => {
                let _ = stop.send(true);
                loadgen::signaling::delete(&http, &session).await;
            }
            None => match start_publisher(&http, &url, &account).await {
                Ok(started) => running = Some(started),
                Err(err) => tally.error(format!("source cam2: {err}")),
            },
        }
        tally.source_toggles.set(tally.source_toggles.get() + 1);
    }
    if let Some((session, stop)) = running {
        let _ = stop.send(true);
        loadgen::signaling::delete(&http, &session).await;
    }
}

/// `per_second` viewers join each second and watch for 1–4 s.
async fn keep_viewers_coming(whep: String, per_second: u32, stop: watch::Receiver<bool>, tally: Rc<Tally>) {
    let shared = Rc::new(Shared::default());
    let mut clients: Vec<reqwest::Client> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second);
    let mut watching = Vec::new();
    let mut n: u64 = 0;
    while !*stop.borrow() {
        tick.tick().await;
        // Addresses are reused round-robin; with 1–4 s lives only a few viewers share one.
        let slot = (n as usize / VIEWERS_PER_ADDRESS) % 2000;
        if slot >= clients.len() {
            let address = std::net::IpAddr::from([127, 2, (slot / 250) as u8, (slot % 250) as u8 + 1]);
            match reqwest::Client::builder().local_address(address).build() {
                Ok(client) => clients.push(client),
                Err(err) => {
                    tally.error(format!("client: {err}"));
                    break;
                }
            }
        }
        let http = clients[slot.min(clients.len() - 1)].clone();
        let lifetime = Duration::from_millis(1000 + (n * 7919 % 3000));
        let (leave, left) = watch::channel(false);
        let whep = whep.clone();
        let shared = shared.clone();
        let tally_viewer = tally.clone();
        watching.push(spawn_local(async move {
            let watching = spawn_local(viewer::watch(http, whep, None, left, shared));
            tokio::time::sleep(lifetime).await;
            let _ = leave.send(true);
            if let Ok(report) = watching.await {
                tally_viewer.viewer(report);
            }
        }));
        tally.joins.set(tally.joins.get() + 1);
        n += 1;
        watching.retain(|task| !task.is_finished());
    }
    for task in watching {
        let _ = task.await;
    }
}

/// Feeds of the stream's state, each read for a moment and dropped.
async fn keep_feeds_coming(url: String, stop: watch::Receiver<bool>, tally: Rc<Tally>) {
    let http = match reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 3, 0, 1])).build() {
        Ok(http) => http,
        Err(err) => return tally.error(format!("feed client: {err}")),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1) / FEEDS_PER_SECOND);
    let mut open = Vec::new();
    let mut n: u64 = 0;
    while !*stop.borrow() {
        tick.tick().await;
        let request = http.get(&url).timeout(Duration::from_secs(10)).send();
        let hold = Duration::from_millis(500 + n * 613 % 2500);
        let feed_tally = tally.clone();
        open.push(spawn_local(async move {
            let tally = feed_tally;
            match request.await {
                Ok(mut response) if response.status() == 200 => {
                    let first = tokio::time::timeout(Duration::from_secs(5), response.chunk()).await;
                    if !matches!(first, Ok(Ok(Some(_)))) {
                        tally.feed_errors.set(tally.feed_errors.get() + 1);
                        tally.error("a feed sent nothing".into());
                    }
                    tokio::time::sleep(hold).await;
                }
                Ok(response) => {
                    tally.feed_errors.set(tally.feed_errors.get() + 1);
                    tally.error(format!("feed: {}", response.status()));
                }
                Err(err) => {
                    tally.feed_errors.set(tally.feed_errors.get() + 1);
                    tally.error(format!("feed: {err}"));
                }
            }
        }));
        tally.feeds.set(tally.feeds.get() + 1);
        n += 1;
        open.retain(|task| !task.is_finished());
    }
    for task in open {
        let _ = task.await;
    }
}

/// A viewer offer that never connects, a trickle PATCH on its session, then DELETE.
async fn keep_trickling(whep: String, stop: watch::Receiver<bool>, tally: Rc<Tally>) {
    let http = match reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 3, 0, 2])).build() {
        Ok(http) => http,
        Err(err) => return tally.error(format!("trickle client: {err}")),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1) / TRICKLES_PER_SECOND);
    while !*stop.borrow() {
        tick.tick().await;
        let Ok((_peer, offer, _pending, _mids)) =
            loadgen::peer::Peer::offer(&[(str0m::media::MediaKind::Video, str0m::media::Direction::RecvOnly)])
        else {
            continue;
        };
        let created = match loadgen::signaling::post_offer(&http, &whep, None, offer).await {
            Ok(created) => created,
            Err(err) => {
                tally.trickle_errors.set(tally.trickle_errors.get() + 1);
                tally.error(format!("trickle offer: {err}"));
                continue;
            }
        };
        let fragment =
            "m=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.3.0.2 9 typ host\r\n";
        let patched = http
            .patch(&created.location)
            .header("content-type", "application/trickle-ice-sdpfrag")
            .body(fragment)
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match patched.map(|r| r.status().as_u16()) {
            Ok(204) => {}
            Ok(status) => {
                tally.trickle_errors.set(tally.trickle_errors.get() + 1);
                tally.error(format!("trickle PATCH: {status}"));
            }
            Err(err) => {
                tally.trickle_errors.set(tally.trickle_errors.get() + 1);
                tally.error(format!("trickle PATCH: {err}"));
            }
        }
        loadgen::signaling::delete(&http, &created.location).await;
        tally.trickles.set(tally.trickles.get() + 1);
    }
}
