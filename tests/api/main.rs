//! Integration tests: each starts the real application on port 0 with a fresh data folder and
//! talks to it over HTTP.

mod account_settings;
mod accounts;
mod acme;
mod admin;
mod binary;
mod hardening;
mod helpers;
mod live_page;
mod media_addresses;
mod pages;
mod proxy;
mod recording;
mod rtc;
mod self_check;
mod signup;
mod simulcast;
mod tls;
mod tokens;
mod turn;
mod viewer_access;
mod webhooks;
mod webrtcbin;
mod whip_whep;
