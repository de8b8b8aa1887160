//! `[webhooks]`: what inbound WhatsApp webhooks need beyond the senders (each WhatsApp
//! sender's app secret is `[senders.X] app_secret_env`).
//!
//! ```toml
//! [webhooks]
//! verify_token_env = "WHATSAPP_VERIFY_TOKEN"   # Meta's subscription challenge
//! opt_out_keywords = ["STOP", "СТОП"]           # replaces the defaults
//! opt_in_keywords = ["START"]
//! ```
//! The keyword lists replace the defaults when given (`herald_core::keyword`); a list that
//! cannot work (an empty word, a word in both lists) is a config error naming the key. Without
//! `verify_token_env` (or with the variable unset) every subscription challenge is refused:
//! failing closed, Meta cannot be subscribed by anyone who guesses the URL.

use herald_core::keyword::{DEFAULT_OPT_IN, DEFAULT_OPT_OUT, KeywordError, Keywords};
use serde::Deserialize;

/// `[webhooks]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Name of the environment variable holding the verify token Meta's subscription
    /// challenge must present (`hub.verify_token`).
    pub verify_token_env: Option<String>,
    /// Whole messages that opt the sender out of everything on the channel.
    #[serde(default = "default_opt_out")]
    pub opt_out_keywords: Vec<String>,
    /// Whole messages that opt the sender in to everything on the channel.
    #[serde(default = "default_opt_in")]
    pub opt_in_keywords: Vec<String>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            verify_token_env: None,
            opt_out_keywords: default_opt_out(),
            opt_in_keywords: default_opt_in(),
        }
    }
}

fn default_opt_out() -> Vec<String> {
    DEFAULT_OPT_OUT.iter().map(|w| (*w).to_owned()).collect()
}

fn default_opt_in() -> Vec<String> {
    DEFAULT_OPT_IN.iter().map(|w| (*w).to_owned()).collect()
}

impl WebhookSettings {
    /// The keyword lists, checked and folded.
    ///
    /// # Errors
    /// A list that cannot work (see [`KeywordError`]).
    pub fn keywords(&self) -> Result<Keywords, KeywordError> {
        Keywords::new(&self.opt_out_keywords, &self.opt_in_keywords)
    }

    /// What is wrong, naming the key; `None` when nothing.
    pub(super) fn check(&self) -> Option<String> {
        if self
            .verify_token_env
            .as_deref()
            .is_some_and(|name| name.trim().is_empty())
        {
            return Some("webhooks.verify_token_env: must name a variable".into());
        }
        self.keywords().err().map(|error| {
            let key = match &error {
                KeywordError::Invalid { list, .. } | KeywordError::TooMany { list } => {
                    format!("webhooks.{list}_keywords")
                }
                KeywordError::InBoth { .. } => "webhooks.opt_in_keywords".to_owned(),
            };
            format!("{key}: {error}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_hold_the_issue_lists_and_bad_lists_name_the_key() {
        let settings = WebhookSettings::default();
        assert!(settings.check().is_none());
        let keywords = settings.keywords().unwrap();
        assert!(keywords.classify("СТОП").is_some());
        assert!(keywords.classify("ПОДПИСАТЬСЯ").is_some());
        let both = WebhookSettings {
            opt_in_keywords: vec!["stop".into()],
            ..WebhookSettings::default()
        };
        assert!(
            both.check()
                .unwrap()
                .starts_with("webhooks.opt_in_keywords:")
        );
        let empty = WebhookSettings {
            opt_out_keywords: vec!["...".into()],
            ..WebhookSettings::default()
        };
        assert!(
            empty
                .check()
                .unwrap()
                .starts_with("webhooks.opt_out_keywords:")
        );
    }
}
