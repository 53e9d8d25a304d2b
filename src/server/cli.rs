//! The commands an operator runs beside the server on its machine (`ferrocast invite`,
//! `ferrocast reset-password`): they open the same database (SQLite in WAL mode takes a second
//! writer while the server runs) and print what they did.

use std::io::{BufRead, IsTerminal, Write};

use crate::{
    config::Config,
    db,
    server::{accounts::Accounts, invites},
};

/// `ferrocast invite`: prints a sign-up link; `Err` is the message to print.
pub async fn invite(config: &Config, expires_in: u64, note: &str) -> Result<String, String> {
    let pool = db::open(&config.data_dir).await.map_err(|e| format!("cannot open the database: {e}"))?;
    let public_url = config.public_url_or_default();
    let made =
        invites::make(&pool, &public_url, None, Some(expires_in), Some(note)).await.map_err(|e| e.public_message());
    pool.close().await;
    let made = made?;
    let mut out = format!("Sign-up link (one use, until {}):\n{}\n", made.expires_at, made.url);
    if config.signup != crate::config::SignupMode::Invite {
        let mode = format!("{:?}", config.signup).to_lowercase();
        out.push_str(&format!("Note: with --signup {mode} the server does not ask for invites.\n"));
    }
    Ok(out)
}

/// `ferrocast reset-password EMAIL`: reads the new password (without echo on a terminal, else one
/// line of standard input), sets it and ends the account's sessions.
pub async fn reset_password(config: &Config, email: &str) -> Result<String, String> {
    let password = read_new_password()?;
    let pool = db::open(&config.data_dir).await.map_err(|e| format!("cannot open the database: {e}"))?;
    let accounts = Accounts::new(pool.clone(), config.signup);
    let reset = accounts.reset_password(email, &password).await.map_err(|e| e.public_message());
    pool.close().await;
    let account = reset?;
    Ok(format!("New password set for {}; its sessions have ended.\n", account.email))
}

fn read_new_password() -> Result<String, String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).map_err(|e| format!("cannot read the password: {e}"))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = prompt_hidden("New password: ")?;
    let again = prompt_hidden("Again: ")?;
    if first != again {
        return Err("the two passwords differ; nothing changed".into());
    }
    Ok(first)
}

/// Reads a line from the terminal with echo off (restored however the read ends).
fn prompt_hidden(prompt: &str) -> Result<String, String> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let fd = libc::STDIN_FILENO;
    // SAFETY: tcgetattr/tcsetattr read and write the one termios struct that lives here, for the
    // process's own standard input.
    let saved = unsafe {
        let mut term: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut term) != 0 {
            return Err("cannot read the terminal's settings".into());
        }
        let saved = term;
        term.c_lflag &= !libc::ECHO;
        libc::tcsetattr(fd, libc::TCSANOW, &term);
        saved
    };
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    // SAFETY: as above; puts back the settings read before.
    unsafe {
        libc::tcsetattr(fd, libc::TCSANOW, &saved);
    }
    eprintln!();
    read.map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
