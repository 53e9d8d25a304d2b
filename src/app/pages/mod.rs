//! One module per page (or group of pages).

pub mod account;
pub mod admin;
pub mod api_keys;
pub mod auth;
pub mod broadcast;
pub mod live;
pub mod not_found;
pub mod recordings;
mod token_form;
pub mod token_new;
pub mod token_settings;
pub mod tokens;
pub mod viewer_tokens;
pub mod webhooks;
