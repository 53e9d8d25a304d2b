//! The load generator behind `cargo bench --bench fanout` and `--bench web`: real WebRTC peers
//! (str0m, sans-IO, one UDP socket each) publishing through WHIP and watching through WHEP, all on
//! one thread so the generator stays cheap and measurable, plus what the benchmarks share.
//!
//! - [`media`]: the synthetic VP8 + Opus a publisher sends (sizes of 720p30, send time inside);
//! - [`peer`]: one str0m peer on a loopback socket, kernel receive timestamps;
//! - [`publisher`], [`viewer`]: the two roles; [`accounting`]: what a viewer counts (unit-tested);
//! - [`signaling`]: WHIP/WHEP over HTTP; [`server`]: the server process and an account on it;
//! - [`system`]: procfs CPU and memory, core pinning, the loopback-only network namespace.

pub mod accounting;
pub mod media;
pub mod peer;
pub mod publisher;
pub mod server;
pub mod signaling;
pub mod system;
pub mod viewer;
