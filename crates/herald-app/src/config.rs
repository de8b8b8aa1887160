//! `herald.toml` and its environment overrides (design §4).
//!
//! Sources, later wins: built-in defaults → the file (`--config`, then `HERALD_CONFIG`, then
//! `./herald.toml`; a missing default file is fine, a missing named file is an error) →
//! `HERALD_<SECTION>__<KEY>` variables, double underscore for nesting. Only names with a `__`
//! are config keys, so `HERALD_CONFIG` and friends are never rejected as unknown. Unknown keys in
//! the file are errors that name the key: a typo in a rate limit must not silently fall back.
//!
//! With no config file at all, a `main` sender that appends to `./herald-outbox.jsonl` exists,
//! so the demo runs out of the box. It exists only then: a config file lists every sender there
//! is, and a campaign naming one it lacks is an error, never a quiet outbox.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use herald_campaign::input::{InputError, MAX_DOCUMENT_BYTES, read_document};
use herald_core::ConsentChannel;
use serde::{Deserialize, Deserializer};

mod admin;
mod metrics;
mod source;
mod store;
mod webhooks;
mod worker;

pub use admin::{AdminSettings, DEFAULT_ADMIN_LISTEN};
pub use metrics::MetricsSettings;
pub use store::{RedisPersistence, RedisUrl, RetentionDays, StoreSettings};
pub use webhooks::WebhookSettings;
pub use worker::{LEASE_PER_TIMEOUT, WorkerSettings};

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file could not be read: missing (when named), not a regular file, over
    /// [`MAX_DOCUMENT_BYTES`], not UTF-8.
    #[error("config {}: {}", path.display(), source.kind)]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: InputError,
    },
    /// The file or an override is not valid.
    #[error("invalid config{}: {message}", .origin.as_deref().map(|o| format!(" {o}")).unwrap_or_default())]
    Invalid {
        /// The file or variable.
        origin: Option<String>,
        /// What is wrong (serde names the key).
        message: String,
    },
}

/// All settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where state lives.
    #[serde(default)]
    pub store: StoreSettings,
    /// Sender accounts by name.
    #[serde(default)]
    pub senders: BTreeMap<String, SenderSettings>,
    /// Worker tuning.
    #[serde(default)]
    pub worker: WorkerSettings,
    /// The `/metrics` listener of a role without the admin.
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// Inbound WhatsApp webhooks: verify token, consent keywords.
    #[serde(default)]
    pub webhooks: WebhookSettings,
    /// The admin HTTP API.
    #[serde(default)]
    pub admin: AdminSettings,
    /// The config file these settings were read from; `None` when there is none.
    #[serde(skip)]
    pub file: Option<PathBuf>,
    /// `main` is the implicit outbox (there is no config file and no variable defines it).
    #[serde(skip)]
    implicit_main: bool,
}

/// The sender a campaign without `sender:` uses.
pub const IMPLICIT_SENDER: &str = "main";

/// Where the implicit `main` outbox appends, relative to the working directory.
pub const IMPLICIT_OUTBOX: &str = "herald-outbox.jsonl";

/// Channel kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// Append JSONL to a file (demo and dry run).
    Outbox,
    /// POST JSON to a URL.
    Webhook,
    /// WhatsApp Cloud API template messages.
    Whatsapp,
}

/// `[senders.<name>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderSettings {
    /// How messages go out.
    pub channel: ChannelKind,
    /// Outbox file.
    pub path: Option<PathBuf>,
    /// Webhook URL.
    pub url: Option<String>,
    /// Name of the environment variable holding the webhook's HMAC secret.
    pub secret_env: Option<String>,
    /// WhatsApp: the sending number's id (not the number).
    pub phone_number_id: Option<String>,
    /// WhatsApp: name of the environment variable holding the access token.
    pub token_env: Option<String>,
    /// WhatsApp: name of the environment variable holding the Meta app's secret, which signs
    /// the webhooks about this number (`X-Hub-Signature-256`). Without it (or with the
    /// variable unset) every webhook naming this number is refused with 401.
    pub app_secret_env: Option<String>,
    /// WhatsApp: the Graph API root (default https://graph.facebook.com).
    pub base_url: Option<String>,
    /// WhatsApp: the Graph API version (default v21.0).
    pub api_version: Option<String>,
    /// Unique recipients per moving 24 hours (WhatsApp's messaging tier for the business
    /// portfolio: 250, 2000, 10000, 100000); none for unlimited.
    pub tier_limit: Option<u64>,
    /// Requests per second (every request counts, retries included). Default: 80 for WhatsApp
    /// (the Cloud API's default throughput per number; 20 for a number also used in the
    /// WhatsApp Business app), 20 otherwise. WhatsApp allows at most 1,000.
    pub per_second: Option<u32>,
    /// Webhook request timeout.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Outbox and webhook senders: the channel whose consent they check (default `whatsapp`).
    /// Those channels stand in for the messaging channel a recipient consented on, so they must
    /// say which one; a WhatsApp sender always checks `whatsapp`, and naming anything there is
    /// an error rather than a way to send on consent given elsewhere.
    #[serde(default, deserialize_with = "consent_channel")]
    pub consent_channel: Option<ConsentChannel>,
}

fn consent_channel<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ConsentChannel>, D::Error> {
    let name = String::deserialize(deserializer)?;
    ConsentChannel::parse(&name)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("consent_channel: {e}")))
}

impl SenderSettings {
    /// The channel whose consent this sender checks: `whatsapp` unless an outbox or webhook
    /// sender names another.
    pub fn consent_channel(&self) -> ConsentChannel {
        self.consent_channel
            .clone()
            .unwrap_or_else(ConsentChannel::whatsapp)
    }

    /// The configured rate, or the channel's default.
    pub fn rate(&self) -> u32 {
        self.per_second.unwrap_or(match self.channel {
            ChannelKind::Whatsapp => 80,
            ChannelKind::Outbox | ChannelKind::Webhook => 20,
        })
    }
}

fn default_timeout() -> u64 {
    10
}

impl Settings {
    /// Loads settings. `explicit` is `--config`; `env` is the process environment (passed in so
    /// tests never touch the real one).
    pub fn load(
        explicit: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        Self::load_with_default(explicit, env, Path::new(DEFAULT_FILE))
    }

    /// [`Settings::load`] with `default` in place of `./herald.toml` (for tests, which cannot
    /// own the process's working directory).
    fn load_with_default(
        explicit: Option<&Path>,
        env: &BTreeMap<String, String>,
        default: &Path,
    ) -> Result<Self, ConfigError> {
        let named = explicit
            .map(Path::to_path_buf)
            .or_else(|| env.get("HERALD_CONFIG").map(PathBuf::from));
        // A regular file of at most 1 MiB: `--config /dev/zero` must not fill memory, nor a
        // FIFO block. Only a missing default file means "no config"; any other problem with it
        // is an error rather than a silent fallback to defaults.
        let (text, file) = match named {
            Some(path) => match read_document(&path, MAX_DOCUMENT_BYTES) {
                Ok(text) => (text, Some(path)),
                Err(source) => return Err(ConfigError::Read { path, source }),
            },
            None => match read_document(default, MAX_DOCUMENT_BYTES) {
                Ok(text) => (text, Some(default.to_path_buf())),
                Err(e) if e.is_not_found() => (String::new(), None),
                Err(source) => {
                    return Err(ConfigError::Read {
                        path: default.to_path_buf(),
                        source,
                    });
                }
            },
        };
        let origin = file.as_ref().map(|path| path.display().to_string());
        let mut settings = source::settings(&text, origin.as_deref(), env)?;
        settings.file = file;
        if settings.file.is_none() && !settings.senders.contains_key(IMPLICIT_SENDER) {
            settings.senders.insert(
                IMPLICIT_SENDER.into(),
                SenderSettings {
                    channel: ChannelKind::Outbox,
                    path: Some(PathBuf::from(IMPLICIT_OUTBOX)),
                    url: None,
                    secret_env: None,
                    phone_number_id: None,
                    token_env: None,
                    app_secret_env: None,
                    base_url: None,
                    api_version: None,
                    tier_limit: None,
                    per_second: None,
                    timeout_seconds: default_timeout(),
                    consent_channel: None,
                },
            );
            settings.implicit_main = true;
        }
        settings.validate()?;
        Ok(settings)
    }

    /// The config file to read: `--config`, then `HERALD_CONFIG`, then `./herald.toml` if it
    /// exists; `None` when there is none (then only the implicit `main` outbox exists).
    pub fn file(explicit: Option<&Path>, env: &BTreeMap<String, String>) -> Option<PathBuf> {
        config_file(explicit, env, Path::new(DEFAULT_FILE))
    }

    /// The implicit `main` outbox's file, when there is no config file and so it exists.
    pub fn implicit_outbox(&self) -> Option<&Path> {
        if !self.implicit_main {
            return None;
        }
        self.senders
            .get(IMPLICIT_SENDER)
            .and_then(|sender| sender.path.as_deref())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| {
            Err(ConfigError::Invalid {
                origin: None,
                message,
            })
        };
        if let Some(message) = self.store.check() {
            return invalid(message);
        }
        if let Some(message) = self.admin.check() {
            return invalid(message);
        }
        for (name, sender) in &self.senders {
            if sender.per_second == Some(0) {
                return invalid(format!("senders.{name}.per_second: must be > 0"));
            }
            if sender.channel == ChannelKind::Whatsapp && sender.rate() > 1000 {
                return invalid(format!(
                    "senders.{name}.per_second: the Cloud API allows at most 1000"
                ));
            }
            match sender.channel {
                ChannelKind::Outbox if sender.path.is_none() => {
                    return invalid(format!("senders.{name}.path: required for an outbox"));
                }
                ChannelKind::Webhook if sender.url.is_none() => {
                    return invalid(format!("senders.{name}.url: required for a webhook"));
                }
                ChannelKind::Whatsapp
                    if sender.phone_number_id.is_none() || sender.token_env.is_none() =>
                {
                    return invalid(format!(
                        "senders.{name}: phone_number_id and token_env are required for whatsapp"
                    ));
                }
                ChannelKind::Outbox | ChannelKind::Webhook if sender.app_secret_env.is_some() => {
                    return invalid(format!(
                        "senders.{name}.app_secret_env: only a whatsapp sender receives Meta's \
                         webhooks"
                    ));
                }
                ChannelKind::Whatsapp if sender.consent_channel.is_some() => {
                    return invalid(format!(
                        "senders.{name}.consent_channel: a whatsapp sender checks consent on \
                         whatsapp; the key is for outbox and webhook senders"
                    ));
                }
                _ => {}
            }
        }
        if let Some(message) = self.webhooks.check() {
            return invalid(message);
        }
        self.worker.check(&self.senders).map_or(Ok(()), invalid)
    }

    /// The store as messages name it: the Redis URL (it holds no password) or the SQLite file.
    pub fn store_location(&self, env: &BTreeMap<String, String>) -> String {
        match &self.store.redis {
            Some(url) => url.as_str().to_owned(),
            None => self.sqlite_path(env).display().to_string(),
        }
    }

    /// The SQLite file to use.
    pub fn sqlite_path(&self, env: &BTreeMap<String, String>) -> PathBuf {
        if let Some(path) = &self.store.sqlite {
            return path.clone();
        }
        let data = env
            .get("XDG_DATA_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                env.get("HOME")
                    .map(|home| Path::new(home).join(".local/share"))
            })
            .unwrap_or_else(|| PathBuf::from("."));
        data.join("herald").join("herald.db")
    }
}

/// The config file read when neither `--config` nor `HERALD_CONFIG` names one.
const DEFAULT_FILE: &str = "herald.toml";

fn config_file(
    explicit: Option<&Path>,
    env: &BTreeMap<String, String>,
    default: &Path,
) -> Option<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| env.get("HERALD_CONFIG").map(PathBuf::from))
        .or_else(|| default.exists().then(|| default.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_give_a_data_dir_store() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("empty.toml");
        std::fs::write(&file, "").unwrap();
        let settings = Settings::load(Some(&file), &env(&[])).unwrap();
        let path = settings.sqlite_path(&env(&[("XDG_DATA_HOME", "/data"), ("HOME", "/home/u")]));
        assert_eq!(path, PathBuf::from("/data/herald/herald.db"));
        assert_eq!(
            settings.sqlite_path(&env(&[("HOME", "/home/u")])),
            PathBuf::from("/home/u/.local/share/herald/herald.db")
        );
    }

    #[test]
    fn env_overrides_nested_keys_and_ignores_other_herald_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("herald.toml");
        std::fs::write(
            &file,
            "[senders.hook]\nchannel = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\n",
        )
        .unwrap();
        let vars = env(&[
            ("HERALD_SENDERS__HOOK__PER_SECOND", "7"),
            ("HERALD_CONFIG", "ignored-when-explicit"),
            ("HERALD_LOG", "debug"),
        ]);
        let settings = Settings::load(Some(&file), &vars).unwrap();
        assert_eq!(settings.senders["hook"].rate(), 7);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("herald.toml");
        std::fs::write(
            &file,
            "[senders.main]\nchannel = \"outbox\"\npath = \"o.jsonl\"\nper_secnd = 5\n",
        )
        .unwrap();
        let err = Settings::load(Some(&file), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("per_secnd"), "{err}");
        std::fs::write(
            &file,
            "[senders.main]\nchannel = \"outbox\"\npath = \"o.jsonl\"\nper_second = 0\n",
        )
        .unwrap();
        let err = Settings::load(Some(&file), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("senders.main.per_second: must be > 0"),
            "{err}"
        );
        let missing = Settings::load(Some(&dir.path().join("nope.toml")), &env(&[])).unwrap_err();
        assert!(matches!(missing, ConfigError::Read { .. }));
    }
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    #[test]
    fn whatsapp_defaults_to_80_per_second_and_allows_at_most_1000() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("herald.toml");
        let wa =
            "[senders.wa]\nchannel = \"whatsapp\"\nphone_number_id = \"1\"\ntoken_env = \"T\"\n";
        std::fs::write(&file, wa).unwrap();
        let settings = Settings::load(Some(&file), &BTreeMap::new()).unwrap();
        assert_eq!(settings.senders["wa"].rate(), 80);
        let hook = "[senders.hook]\nchannel = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\n";
        std::fs::write(&file, hook).unwrap();
        let settings = Settings::load(Some(&file), &BTreeMap::new()).unwrap();
        assert_eq!(settings.senders["hook"].rate(), 20);
        std::fs::write(&file, format!("{wa}per_second = 1001\n")).unwrap();
        let err = Settings::load(Some(&file), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("senders.wa.per_second: the Cloud API allows at most 1000"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod input_tests {
    use super::*;

    /// Issue 10 item 9: `--config /dev/zero` grew without end and a FIFO blocked forever. A
    /// config must be a regular file of at most 1 MiB.
    #[test]
    fn a_config_is_a_regular_file_of_at_most_a_mebibyte() {
        let env = BTreeMap::new();
        let dir = tempfile::tempdir().unwrap();
        for special in [Path::new("/dev/zero"), dir.path()] {
            let err = Settings::load(Some(special), &env).unwrap_err();
            assert!(matches!(err, ConfigError::Read { .. }), "{err}");
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
        let big = dir.path().join("herald.toml");
        let comment = format!("#{}\n", "x".repeat(1000));
        std::fs::write(&big, comment.repeat(1100)).unwrap();
        let err = Settings::load(Some(&big), &env).unwrap_err().to_string();
        assert!(
            err.contains("larger than the limit of 1048576 bytes"),
            "{err}"
        );
        assert!(err.contains("herald.toml"), "{err}");
    }
}

#[cfg(test)]
mod consent_channel_tests {
    use super::*;

    fn load(toml: &str) -> Result<Settings, String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("herald.toml");
        std::fs::write(&file, toml).unwrap();
        Settings::load(Some(&file), &BTreeMap::new()).map_err(|e| e.to_string())
    }

    #[test]
    fn outbox_and_webhook_senders_name_their_consent_channel_and_whatsapp_ones_cannot() {
        let settings = load(
            "[senders.hook]\nchannel = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\n\
             consent_channel = \"sms\"\n\
             [senders.box]\nchannel = \"outbox\"\npath = \"o.jsonl\"\n\
             [senders.wa]\nchannel = \"whatsapp\"\nphone_number_id = \"1\"\ntoken_env = \"T\"\n",
        )
        .unwrap();
        assert_eq!(settings.senders["hook"].consent_channel().as_str(), "sms");
        assert_eq!(
            settings.senders["box"].consent_channel().as_str(),
            "whatsapp"
        );
        assert_eq!(
            settings.senders["wa"].consent_channel().as_str(),
            "whatsapp"
        );

        let error = load(
            "[senders.hook]\nchannel = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\n\
             consent_channel = \"SMS\"\n",
        )
        .unwrap_err();
        assert!(error.contains("consent_channel"), "{error}");
        assert!(error.contains("\"SMS\""), "{error}");

        let error = load(
            "[senders.wa]\nchannel = \"whatsapp\"\nphone_number_id = \"1\"\ntoken_env = \"T\"\n\
             consent_channel = \"whatsapp\"\n",
        )
        .unwrap_err();
        assert!(
            error.contains(
                "senders.wa.consent_channel: a whatsapp sender checks consent on whatsapp"
            ),
            "{error}"
        );
    }
}

#[cfg(test)]
mod implicit_outbox_tests {
    use super::*;

    /// Issue 10, item 11: a config that defines only `[senders.other]` has no `main`, whether it
    /// is named by `--config`, by `HERALD_CONFIG` or found as `./herald.toml`; the implicit
    /// outbox exists only without any config file.
    #[test]
    fn the_implicit_outbox_exists_only_without_a_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("herald.toml");
        std::fs::write(
            &file,
            "[senders.other]\nchannel = \"outbox\"\npath = \"o.jsonl\"\n",
        )
        .unwrap();
        let no_env = BTreeMap::new();
        let absent = dir.path().join("absent.toml");
        let by_env = BTreeMap::from([("HERALD_CONFIG".to_owned(), file.display().to_string())]);
        for (explicit, env, default) in [
            (Some(file.as_path()), &no_env, absent.as_path()),
            (None, &by_env, absent.as_path()),
            (None, &no_env, file.as_path()),
        ] {
            let settings = Settings::load_with_default(explicit, env, default).unwrap();
            assert_eq!(settings.senders.keys().collect::<Vec<_>>(), ["other"]);
            assert_eq!(settings.file.as_deref(), Some(file.as_path()));
            assert_eq!(settings.implicit_outbox(), None);
        }
        let bare = Settings::load_with_default(None, &no_env, &absent).unwrap();
        assert_eq!(bare.file, None);
        assert_eq!(bare.senders["main"].channel, ChannelKind::Outbox);
        assert_eq!(bare.implicit_outbox(), Some(Path::new(IMPLICIT_OUTBOX)));
    }

    /// Without a file, variables may still define `main`: then it is theirs, not the implicit
    /// outbox.
    #[test]
    fn variables_defining_main_replace_the_implicit_outbox() {
        let dir = tempfile::tempdir().unwrap();
        let vars = BTreeMap::from([
            (
                "HERALD_SENDERS__MAIN__CHANNEL".to_owned(),
                "webhook".to_owned(),
            ),
            (
                "HERALD_SENDERS__MAIN__URL".to_owned(),
                "http://127.0.0.1:9/x".to_owned(),
            ),
        ]);
        let settings =
            Settings::load_with_default(None, &vars, &dir.path().join("absent.toml")).unwrap();
        assert_eq!(settings.senders["main"].channel, ChannelKind::Webhook);
        assert_eq!(settings.implicit_outbox(), None);
    }
}
