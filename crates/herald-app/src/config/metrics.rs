//! `[metrics]`: where a long-running role without the admin API serves `/metrics`.
//!
//! The admin API serves `/metrics` on its own listener; a worker (or a scheduler, or `run`) runs
//! without the admin, and Prometheus still needs to scrape it, so `listen` names an address for
//! a listener that serves `/metrics` and nothing else. It takes no token, as scrapers expect:
//! the text holds no personal data (labels are bounded sets, see `herald_app::metrics`). Unset,
//! nothing listens (the recorder still records, for the admin to serve when it runs).

use std::net::SocketAddr;

use serde::Deserialize;

/// `[metrics]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Address of the `/metrics` listener (`127.0.0.1:9464`; port 0 picks a free one).
    pub listen: Option<SocketAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_is_an_address_and_nothing_else_is_known() {
        let ok: MetricsSettings = toml::from_str("listen = \"127.0.0.1:9464\"").unwrap();
        assert_eq!(ok.listen, Some("127.0.0.1:9464".parse().unwrap()));
        let bad = toml::from_str::<MetricsSettings>("listen = \"localhost\"").unwrap_err();
        assert!(bad.to_string().contains("invalid socket address"), "{bad}");
        let unknown = toml::from_str::<MetricsSettings>("port = 9464").unwrap_err();
        assert!(
            unknown.to_string().contains("unknown field `port`"),
            "{unknown}"
        );
    }
}
