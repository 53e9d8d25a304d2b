//! Where a stream may be embedded (README "Embedding only on your sites"). A publish token's
//! `embedOrigins` restricts every stream name its patterns cover: `/watch` tells browsers which
//! sites may frame it (`Content-Security-Policy: frame-ancestors`), and WHEP refuses offers whose
//! `Origin` names another site, so the publish/play module cannot play it there either. This
//! server's own pages (the viewer itself, the share panel's preview) are always allowed.
//! Requests without `Origin` (OBS, ffmpeg, curl) come from no web page and pass: the list keeps a
//! stream off other websites, it does not make it private.

use crate::server::tokens::parse_json_list;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmbedPolicy {
    /// No token covering the stream lists sites.
    Anywhere,
    /// Only these origins (`scheme://host[:port]`), besides this server's own.
    Only(Vec<String>),
}

impl EmbedPolicy {
    /// The policy from the embed lists (JSON) of the tokens covering a stream that list sites.
    pub(super) fn from_lists<'a>(lists: impl Iterator<Item = &'a str>) -> Self {
        let mut restricted = false;
        let mut origins: Vec<String> = Vec::new();
        for embed in lists {
            restricted = true;
            for origin in parse_json_list(embed) {
                if !origins.contains(&origin) {
                    origins.push(origin);
                }
            }
        }
        if restricted {
            Self::Only(origins)
        } else {
            Self::Anywhere
        }
    }

    /// The `frame-ancestors` directive for the stream's `/watch` page. Stored origins are
    /// normalised ASCII serialisations, so they hold no space or `;` that could end the directive.
    pub fn frame_ancestors(&self) -> String {
        match self {
            Self::Anywhere => "frame-ancestors *".to_owned(),
            Self::Only(origins) => {
                let mut directive = "frame-ancestors 'self'".to_owned();
                for origin in origins {
                    directive.push(' ');
                    directive.push_str(origin);
                }
                directive
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sites_of_every_list_are_allowed() {
        let lists = [r#"["https://a.example"]"#, r#"["https://b.example","https://a.example"]"#];
        let policy = EmbedPolicy::from_lists(lists.into_iter());
        assert_eq!(policy, EmbedPolicy::Only(vec!["https://a.example".into(), "https://b.example".into()]));
        assert_eq!(policy.frame_ancestors(), "frame-ancestors 'self' https://a.example https://b.example");
        let anywhere = EmbedPolicy::from_lists(std::iter::empty());
        assert_eq!(anywhere, EmbedPolicy::Anywhere);
        assert_eq!(anywhere.frame_ancestors(), "frame-ancestors *");
        // A damaged list restricts to this server alone rather than opening up.
        assert_eq!(EmbedPolicy::from_lists(["not json"].into_iter()).frame_ancestors(), "frame-ancestors 'self'");
    }
}
