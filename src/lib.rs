//! ferrocast: self-hosted real-time streaming.
//!
//! One library compiled twice: with `ssr` it is the server (axum, sqlx, the SFU later), with
//! `hydrate` it is the wasm that brings the server-rendered pages to life in the browser.
//! Modules that only make sense on the server are gated at their `mod` line.

#![recursion_limit = "256"]

pub mod app;
pub mod model;
pub mod names;

#[cfg(feature = "ssr")]
pub mod config;
#[cfg(feature = "ssr")]
pub mod db;
#[cfg(feature = "ssr")]
pub mod recorder;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod sfu;

/// Entry point of the wasm bundle: hydrates the server-rendered `<body>`.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
