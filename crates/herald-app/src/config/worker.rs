//! `[worker]`: how a worker takes deliveries, and how long its claims stay its own.
//!
//! A claim's lease must outlive any request made under it by a wide margin: a lease that ends
//! while its request is still waiting for the provider lets another worker recover the delivery
//! (`unknown`, or a second request under `at_least_once`) while the first may still succeed.
//! The worker renews its leases while requests are in flight, but a renewal can be late (a busy
//! store, a paused process), so the lease is refused when it is under three HTTP timeouts.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{ChannelKind, SenderSettings};

/// How many HTTP timeouts a lease must cover at least.
pub const LEASE_PER_TIMEOUT: u64 = 3;

/// `[worker]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// Deliveries looked at per step (and so requests in flight at most).
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// How long a claim stays its worker's without a renewal (renewed while it works). A worker
    /// that dies holds its deliveries this long before another recovers them.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            batch: default_batch(),
            lease_seconds: default_lease_seconds(),
        }
    }
}

fn default_batch() -> usize {
    64
}

fn default_lease_seconds() -> u64 {
    60
}

impl WorkerSettings {
    /// The lease as a duration.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }

    /// What is wrong with these settings given the senders, naming the key; `None` when nothing.
    pub(super) fn check(&self, senders: &BTreeMap<String, SenderSettings>) -> Option<String> {
        if self.batch == 0 {
            return Some("worker.batch: must be > 0".into());
        }
        if self.lease_seconds == 0 {
            return Some("worker.lease_seconds: must be > 0".into());
        }
        // Only senders that make HTTP requests have a timeout that matters; an outbox appends
        // to a local file.
        senders
            .iter()
            .filter(|(_, sender)| sender.channel != ChannelKind::Outbox)
            .find(|(_, sender)| {
                self.lease_seconds < sender.timeout_seconds.saturating_mul(LEASE_PER_TIMEOUT)
            })
            .map(|(name, sender)| {
                format!(
                    "worker.lease_seconds: {} is under {LEASE_PER_TIMEOUT} times \
                     senders.{name}.timeout_seconds ({}): a claim's lease must outlast its \
                     request by a wide margin, or another worker recovers a delivery whose \
                     request may still succeed; raise worker.lease_seconds to at least {} or \
                     lower the timeout",
                    self.lease_seconds,
                    sender.timeout_seconds,
                    sender.timeout_seconds.saturating_mul(LEASE_PER_TIMEOUT)
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::Settings;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("herald.toml");
        std::fs::write(&file, toml).unwrap();
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::load(Some(&file), &env).map_err(|e| e.to_string())
    }

    const HOOK: &str = "[senders.hook]\nchannel = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\n";

    #[test]
    fn the_lease_defaults_to_a_minute() {
        let settings = load(HOOK, &[]).unwrap();
        assert_eq!(settings.worker.lease_seconds, 60);
        assert_eq!(settings.worker.lease(), std::time::Duration::from_secs(60));
    }

    #[test]
    fn a_lease_under_three_http_timeouts_is_refused_naming_both_keys() {
        let error = load(&format!("{HOOK}[worker]\nlease_seconds = 29\n"), &[]).unwrap_err();
        assert!(
            error.contains(
                "worker.lease_seconds: 29 is under 3 times senders.hook.timeout_seconds (10)"
            ),
            "{error}"
        );
        assert!(load(&format!("{HOOK}[worker]\nlease_seconds = 30\n"), &[]).is_ok());
        // A short timeout allows a short lease (the multi-process tests use one).
        let short = format!("{HOOK}timeout_seconds = 1\n[worker]\nlease_seconds = 3\n");
        assert_eq!(load(&short, &[]).unwrap().worker.lease_seconds, 3);
        // Set from the environment, the same check applies.
        let error = load(HOOK, &[("HERALD_WORKER__LEASE_SECONDS", "5")]).unwrap_err();
        assert!(
            error.contains("worker.lease_seconds: 5 is under"),
            "{error}"
        );
    }

    #[test]
    fn an_outbox_has_no_timeout_to_outlast_and_a_zero_lease_is_refused() {
        let outbox = "[senders.main]\nchannel = \"outbox\"\npath = \"o.jsonl\"\n";
        let settings = load(&format!("{outbox}[worker]\nlease_seconds = 1\n"), &[]).unwrap();
        assert_eq!(settings.worker.lease_seconds, 1);
        let error = load(&format!("{outbox}[worker]\nlease_seconds = 0\n"), &[]).unwrap_err();
        assert!(
            error.contains("worker.lease_seconds: must be > 0"),
            "{error}"
        );
        let error = load(&format!("{outbox}[worker]\nlease_secs = 60\n"), &[]).unwrap_err();
        assert!(error.contains("lease_secs"), "{error}");
    }
}
