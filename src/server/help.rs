//! `GET /help/https`: the README's "Run it on a server" section, served by the binary itself,
//! so the broadcaster's "this page needs HTTPS" notice links to instructions that match the
//! version running, even on a machine with no other copy of the README.

use std::sync::LazyLock;

use axum::{http::header, response::IntoResponse};

const README: &str = include_str!("../../README.md");
const SECTION: &str = "## Run it on a server";

static HTTPS_HELP: LazyLock<String> = LazyLock::new(|| {
    let Some(start) = README.find(SECTION) else { return "See the README: Run it on a server.\n".to_owned() };
    let rest = &README[start..];
    let end = rest[SECTION.len()..].find("\n## ").map_or(rest.len(), |i| i + SECTION.len() + 1);
    rest[..end].to_owned()
});

pub async fn https() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], HTTPS_HELP.as_str())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_section_is_found_and_tells_how_to_get_a_certificate() {
        let help = super::HTTPS_HELP.as_str();
        assert!(help.starts_with(super::SECTION), "{help:.80}");
        assert!(help.contains("--acme-domain"));
        assert!(!help[super::SECTION.len()..].contains("\n## "), "only the one section");
    }
}
