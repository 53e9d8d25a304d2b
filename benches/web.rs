//! Dashboard benchmark: server-rendered pages and logins at fixed request rates.
//!
//! ```text
//! cargo bench --bench web -- [--rps 1000] [--logins 20] [--seconds 10] [--https] [--url http://127.0.0.1:3000]
//! ```
//!
//! Starts `ferrocast` as its own process (fresh data folder, pinned to CPU 0; the generator runs on
//! CPU 1) and signs up an account with ten publish tokens. Then, open loop (each request leaves at
//! its scheduled time, and its latency counts from then, so a slow server cannot slow the load):
//! 1. `GET /tokens` (the dashboard's main page, rendered from SQLite) at `--rps` for `--seconds`;
//! 2. `POST /api/v1/login` (argon2id) at `--logins` per second for `--seconds`, with pages still
//!    asked for at a tenth of `--rps`, to see that a login storm leaves pages responsive.
//!
//! With `--https` the server serves HTTPS from a certificate made for the run (`--tls-cert`),
//! and every request goes over TLS (kept-alive connections, as browsers do).
//!
//! Prints a summary and, last, one JSON line.

#[allow(dead_code)] // shared with the `fanout` benchmark, which uses most of it
mod loadgen;

use std::{
    cell::RefCell,
    process::ExitCode,
    rc::Rc,
    time::{Duration, Instant},
};

use loadgen::{
    accounting::percentile,
    server::{streamer, Server, Streamer},
    system,
};
use serde_json::json;
use tokio::time::MissedTickBehavior;

/// Requests still waiting beyond this are not sent (counted as errors): the server has fallen over.
const MAX_IN_FLIGHT: usize = 5000;

struct Args {
    rps: u64,
    logins: u64,
    seconds: u64,
    https: bool,
    url: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { rps: 1000, logins: 20, seconds: 10, https: false, url: None };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |v: String, name: &str| v.parse::<u64>().map_err(|e| format!("{name}: {e}"));
        match arg.as_str() {
            "--rps" => args.rps = number(value("--rps")?, "--rps")?,
            "--logins" => args.logins = number(value("--logins")?, "--logins")?,
            "--seconds" => args.seconds = number(value("--seconds")?, "--seconds")?,
            "--url" => args.url = Some(value("--url")?),
            "--https" => args.https = true,
            "--bench" => {} // cargo bench passes it
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.rps == 0 || args.logins == 0 || args.seconds == 0 {
        return Err("--rps, --logins and --seconds must be at least 1".into());
    }
    Ok(args)
}

/// Latencies (ms) of one kind of request, and how many failed.
#[derive(Default)]
struct Samples {
    ms: Vec<f64>,
    errors: u64,
}

impl Samples {
    fn sorted(mut self) -> (Vec<f64>, u64) {
        self.ms.sort_by(f64::total_cmp);
        (self.ms, self.errors)
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("web: {err}");
            return ExitCode::from(2);
        }
    };
    let server_cpu = match system::prepare_benchmark(args.url.is_some()) {
        Ok(cpu) => cpu,
        Err(err) => {
            eprintln!("web: {err}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(tokio::task::LocalSet::new().run_until(run(&args, server_cpu))) {
        Ok(healthy) if healthy => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("web: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Runs both phases; true when every request succeeded.
async fn run(args: &Args, server_cpu: Option<usize>) -> std::io::Result<bool> {
    let server = match &args.url {
        Some(url) => Server::external(url)?,
        None if args.https => Server::start_https(server_cpu)?,
        None => Server::start(server_cpu, &[])?,
    };
    let account = streamer(&server, "main", false).await?;
    for i in 1..10 {
        let token = json!({ "label": format!("camera {i}"), "streams": [format!("cam-{i}")], "record": i % 2 == 0 });
        let created = account.client.post(server.url("/api/v1/tokens")).json(&token).send().await;
        if created.map(|r| r.status().as_u16()).ok() != Some(201) {
            return Err(std::io::Error::other("cannot create tokens"));
        }
    }
    let page_url = server.url("/tokens");
    let login_url = server.url("/api/v1/login");
    let length = Duration::from_secs(args.seconds);

    // Warm-up: connections, caches.
    let _ = open_loop(100, Duration::from_secs(1), |_| page(&account, &page_url)).await;

    let pid = server.pid();
    let cpu_start = pid.and_then(|pid| system::cpu_time(pid).ok());
    let started = Instant::now();
    let (pages, page_errors) = open_loop(args.rps, length, |_| page(&account, &page_url)).await.sorted();
    let pages_elapsed = started.elapsed();
    let cpu_pages = pid.and_then(|pid| system::cpu_time(pid).ok()).zip(cpu_start).map(|(b, a)| b.saturating_sub(a));

    let logins_client = server.client(false)?;
    let (pages_during, logins) = tokio::join!(
        open_loop((args.rps / 10).max(1), length, |_| page(&account, &page_url)),
        open_loop(args.logins, length, |_| login(&logins_client, &login_url, &account)),
    );
    let (pages_during, page_errors_during) = pages_during.sorted();
    let (logins, login_errors) = logins.sorted();

    let p = |v: &[f64], q: f64| percentile(v, q).map(|ms| (ms * 1000.0).round() / 1000.0);
    let show = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v}"));
    let rps = pages.len() as f64 / pages_elapsed.as_secs_f64();
    let server_cpu_pct = cpu_pages.map(|cpu| (cpu.as_secs_f64() * 1000.0 / pages_elapsed.as_secs_f64()).round() / 10.0);
    println!(
        "pages: {} at {} req/s asked, {:.0} req/s done, p50 {} ms, p99 {} ms, {} errors, server CPU {} %",
        pages.len(),
        args.rps,
        rps,
        show(p(&pages, 50.0)),
        show(p(&pages, 99.0)),
        page_errors,
        show(server_cpu_pct),
    );
    println!(
        "logins: {} at {}/s, p50 {} ms, p99 {} ms, {} errors; pages at a tenth of the rate meanwhile: p99 {} ms, {} errors",
        logins.len(),
        args.logins,
        show(p(&logins, 50.0)),
        show(p(&logins, 99.0)),
        login_errors,
        show(p(&pages_during, 99.0)),
        page_errors_during,
    );
    let result = json!({
        "page_p50_ms": p(&pages, 50.0),
        "page_p99_ms": p(&pages, 99.0),
        "rps": (rps * 10.0).round() / 10.0,
        "login_p99_ms": p(&logins, 99.0),
        "login_p50_ms": p(&logins, 50.0),
        "page_p99_ms_during_logins": p(&pages_during, 99.0),
        "server_cpu_pct": server_cpu_pct,
        "errors": page_errors + page_errors_during + login_errors,
        "https": args.https,
    });
    println!("{result}");
    Ok(page_errors + page_errors_during + login_errors == 0)
}

/// Sends `request` at `rate` per second for `length`, each at its scheduled time whatever the
/// others are doing; latency counts from the scheduled time.
async fn open_loop<F, Fut>(rate: u64, length: Duration, request: F) -> Samples
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = bool> + 'static,
{
    let samples = Rc::new(RefCell::new(Samples::default()));
    let in_flight = Rc::new(std::cell::Cell::new(0usize));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let total = rate * length.as_secs();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = tick.tick().await;
        if in_flight.get() >= MAX_IN_FLIGHT {
            samples.borrow_mut().errors += 1;
            continue;
        }
        in_flight.set(in_flight.get() + 1);
        let (samples, in_flight) = (samples.clone(), in_flight.clone());
        let fut = request(i);
        tasks.push(tokio::task::spawn_local(async move {
            let ok = fut.await;
            let ms = scheduled.elapsed().as_secs_f64() * 1000.0;
            in_flight.set(in_flight.get() - 1);
            let mut samples = samples.borrow_mut();
            if ok {
                samples.ms.push(ms);
            } else {
                samples.errors += 1;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    Rc::try_unwrap(samples).map(RefCell::into_inner).unwrap_or_default()
}

/// One dashboard page, read to the end; true when it is the rendered token list.
fn page(account: &Streamer, url: &str) -> impl std::future::Future<Output = bool> + 'static {
    let request = account.client.get(url).timeout(Duration::from_secs(30)).send();
    async move {
        match request.await {
            Ok(response) if response.status() == 200 => {
                response.text().await.is_ok_and(|body| body.contains("camera 9"))
            }
            _ => false,
        }
    }
}

fn login(client: &reqwest::Client, url: &str, account: &Streamer) -> impl std::future::Future<Output = bool> + 'static {
    let request = client.post(url).json(&json!({ "email": account.email, "password": account.password })).send();
    async move { request.await.is_ok_and(|response| response.status() == 200) }
}
