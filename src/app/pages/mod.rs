//! One module per page (or group of pages).

pub mod auth;
pub mod live;
pub mod not_found;
pub mod tokens;
