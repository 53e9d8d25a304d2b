//! The `ferrocast` server: parse the configuration, build the application, serve until a signal.

use std::io::Write;

use clap::Parser;
use ferrocast::{
    config::{Command, Config},
    server::{cli, Application},
};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc: page rendering allocates many small short-lived objects,
/// and glibc spent ~15 % of a page's CPU in malloc/free/consolidation (`cargo bench --bench web`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Logs on stderr; stdout carries only the addresses the server listens on (scripts and
    // tests read them).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn")))
        .init();
    let config = Config::parse();
    if let Some(command) = &config.command {
        let (name, done) = match command {
            Command::Backup { file } => (
                "backup",
                ferrocast::db::backup(&config.data_dir, file)
                    .await
                    .map(|()| format!("database copied to {}\n", file.display()))
                    .map_err(|e| e.to_string()),
            ),
            Command::Invite { expires_in, note } => ("invite", cli::invite(&config, *expires_in, note).await),
            Command::ResetPassword { email } => ("reset-password", cli::reset_password(&config, email).await),
        };
        return match done {
            Ok(out) => {
                print!("{out}");
                std::process::ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("ferrocast {name}: {err}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    raise_open_files_limit();
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!("{err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Whoever started the server may read only the first line and close the pipe: a write that
    // fails must not stop the server (println! would panic on the broken pipe).
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "ferrocast listening on {}://{}", app.scheme(), app.local_addr());
    if let Some(helper) = app.http_helper_addr() {
        let _ = writeln!(stdout, "ferrocast answering ACME HTTP-01 and redirecting to HTTPS on http://{helper}");
    }
    for line in app.first_run_hints().await {
        let _ = writeln!(stdout, "{line}");
    }
    let _ = stdout.flush();
    match app.run_until(shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("server error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Every viewer, feed and connection holds a file descriptor; the usual soft limit of 1,024 would
/// stop a busy server long before its memory or CPU does (and then `/healthz` too). The hard limit
/// is what the operator allows: take all of it.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write the one struct passed, which lives here.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= limit.rlim_max {
            return;
        }
        let before = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
            tracing::info!(before, now = limit.rlim_max, "open files limit raised to the hard limit");
        } else {
            tracing::warn!(limit = before, "cannot raise the open files limit");
        }
    }
}

/// Completes on Ctrl-C or SIGTERM, whichever comes first.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {err}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!("cannot listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
