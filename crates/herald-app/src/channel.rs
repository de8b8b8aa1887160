//! The configured channel of a sender. The `Channel` port is generic (native async), so the
//! concrete adapters are gathered in one enum rather than boxed.

use std::time::Duration;

use herald_channel::outbox::Outbox;
use herald_channel::webhook::{Webhook, WebhookConfig};
use herald_channel::{Accepted, Channel, OutgoingMessage, SendError};
use herald_channel::{WhatsApp, WhatsAppConfig, WhatsAppError};

use crate::AppError;
use crate::config::{ChannelKind, SenderSettings};

/// One of the adapters.
pub enum AnyChannel {
    /// JSONL file.
    Outbox(Outbox),
    /// Signed POST.
    Webhook(Webhook),
    /// WhatsApp Cloud API.
    WhatsApp(WhatsApp),
}

impl AnyChannel {
    /// Builds the channel of `sender`; `env` supplies secrets by the names the config gives.
    pub fn build(
        name: &str,
        sender: &SenderSettings,
        env: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, AppError> {
        match sender.channel {
            ChannelKind::Outbox => {
                let path = sender
                    .path
                    .as_ref()
                    .ok_or_else(|| AppError::User(format!("senders.{name}.path is required")))?;
                Outbox::open(path).map(AnyChannel::Outbox).map_err(|e| {
                    AppError::User(format!("cannot open outbox {}: {e}", path.display()))
                })
            }
            ChannelKind::Webhook => {
                let url = sender
                    .url
                    .clone()
                    .ok_or_else(|| AppError::User(format!("senders.{name}.url is required")))?;
                let secret = match &sender.secret_env {
                    Some(var) => Some(env.get(var).cloned().ok_or_else(|| {
                        AppError::User(format!(
                            "senders.{name}.secret_env names {var}, which is not set"
                        ))
                    })?),
                    None => None,
                };
                let timeout = Duration::from_secs(sender.timeout_seconds);
                let config = WebhookConfig {
                    url,
                    secret,
                    timeout,
                    // Connecting is part of the request: never longer than its timeout (a short
                    // timeout goes with a short lease, `[worker] lease_seconds`).
                    connect_timeout: Duration::from_secs(3).min(timeout),
                };
                Webhook::new(config)
                    .map(AnyChannel::Webhook)
                    .map_err(|e| AppError::User(format!("senders.{name}: {e}")))
            }
            ChannelKind::Whatsapp => {
                let missing = |key: &str| {
                    AppError::User(format!("senders.{name}.{key} is required for whatsapp"))
                };
                let id = sender
                    .phone_number_id
                    .clone()
                    .ok_or_else(|| missing("phone_number_id"))?;
                let var = sender
                    .token_env
                    .clone()
                    .ok_or_else(|| missing("token_env"))?;
                let token = env.get(&var).cloned().ok_or_else(|| {
                    AppError::User(format!(
                        "senders.{name}.token_env names {var}, which is not set"
                    ))
                })?;
                let mut config = WhatsAppConfig::new(id, token);
                if let Some(url) = &sender.base_url {
                    config.base_url = url.clone();
                }
                if let Some(version) = &sender.api_version {
                    config.api_version = version.clone();
                }
                config.timeout = Duration::from_secs(sender.timeout_seconds);
                // Connecting is part of the request: never longer than its timeout (a short
                // timeout goes with a short lease, `[worker] lease_seconds`).
                config.connect_timeout = config.connect_timeout.min(config.timeout);
                WhatsApp::new(config)
                    .map(AnyChannel::WhatsApp)
                    .map_err(|e| match e {
                        WhatsAppError::InvalidToken | WhatsAppError::TokenTooShort(_) => {
                            AppError::User(format!(
                                "senders.{name}: {e} (the token is read from {var}, named by \
                                 senders.{name}.token_env)"
                            ))
                        }
                        other => AppError::User(format!("senders.{name}: {other}")),
                    })
            }
        }
    }
}

impl Channel for AnyChannel {
    fn name(&self) -> &'static str {
        match self {
            AnyChannel::Outbox(c) => c.name(),
            AnyChannel::Webhook(c) => c.name(),
            AnyChannel::WhatsApp(c) => c.name(),
        }
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Accepted, SendError> {
        match self {
            AnyChannel::Outbox(c) => c.send(message).await,
            AnyChannel::Webhook(c) => c.send(message).await,
            AnyChannel::WhatsApp(c) => c.send(message).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_whatsapp_token_is_refused_naming_its_variable() {
        let sender: SenderSettings = toml::from_str(
            "channel = \"whatsapp\"\nphone_number_id = \"1065\"\ntoken_env = \"WA_TOKEN\"\n",
        )
        .unwrap();
        for token in ["", "x", "fifteen-chars-x"] {
            let env = [("WA_TOKEN".to_owned(), token.to_owned())].into();
            let Err(AppError::User(message)) = AnyChannel::build("wa", &sender, &env) else {
                panic!("{token:?} was accepted");
            };
            assert!(
                message.starts_with("senders.wa: the WhatsApp token"),
                "{message}"
            );
            assert!(message.contains("read from WA_TOKEN"), "{message}");
        }
        let env = [("WA_TOKEN".to_owned(), "sixteen-chars-xy".to_owned())].into();
        assert!(AnyChannel::build("wa", &sender, &env).is_ok());
    }

    /// A one-second request timeout (with a three-second lease) is a valid config: the connect
    /// timeout follows it down instead of being refused as longer than the request's.
    #[test]
    fn a_short_timeout_shortens_the_connect_timeout() {
        let env = [("WA_TOKEN".to_owned(), "sixteen-chars-xy".to_owned())].into();
        for toml in [
            "channel = \"whatsapp\"\nphone_number_id = \"1\"\ntoken_env = \"WA_TOKEN\"\ntimeout_seconds = 1\n",
            "channel = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\ntimeout_seconds = 1\n",
        ] {
            let sender: SenderSettings = toml::from_str(toml).unwrap();
            let built = AnyChannel::build("s", &sender, &env);
            assert!(built.is_ok(), "{toml}: {:?}", built.err());
        }
    }
}
