//! Command-line flags and `FERROCAST_*` environment variables (PRODUCT.md §1).

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, ValueEnum};
use url::Url;

/// Whether strangers may create accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SignupMode {
    Open,
    Closed,
}

/// Everything the server needs to start; every field has a default that makes a first run work.
#[derive(Clone, Debug, Parser)]
#[command(name = "ferrocast", version, about = "Self-hosted real-time streaming (WHIP/WHEP SFU + dashboard)")]
pub struct Config {
    /// Address the HTTP server listens on (port 0 picks a free port).
    #[arg(long, env = "FERROCAST_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Folder for the SQLite database (and, later, recordings); created if missing.
    #[arg(long, env = "FERROCAST_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// URL people reach this server at; used in share links and to mark cookies `Secure` when it
    /// is https. Defaults to `http://{listen}`.
    #[arg(long, env = "FERROCAST_PUBLIC_URL")]
    pub public_url: Option<Url>,

    /// `open` lets anyone sign up; `closed` refuses new accounts.
    #[arg(long, env = "FERROCAST_SIGNUP", value_enum, default_value = "open")]
    pub signup: SignupMode,

    /// Folder holding the built browser bundle (`pkg/`) and the files of `public/`.
    #[arg(long, env = "FERROCAST_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
}

impl Config {
    /// The configuration a test or an embedding program gets without parsing a command line.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            public_url: None,
            signup: SignupMode::Open,
            site_root: PathBuf::from("target/site"),
        }
    }
}
