//! From the file's text and the `HERALD_<SECTION>__<KEY>` variables to [`Settings`], with every
//! error naming the key, and where the bad value came from: `file:line:col` for the file, the
//! variable for an override (`HERALD_SENDERS__MAIN__PER_SECOND=abc` is an error about
//! `senders.main.per_second` set by that variable, not a bare "expected u32").

use std::collections::BTreeMap;

use serde_path_to_error::Segment;

use super::{ConfigError, Settings};

/// Key paths an override may set are at most this deep (the deepest key today is 3:
/// `senders.<name>.<key>`). Deeper ones are refused before anything recurses over them.
const MAX_OVERRIDE_DEPTH: usize = 8;

/// One `HERALD_A__B__C` variable: its name, the key path it sets (`a.b.c`) and its value.
struct Override {
    variable: String,
    keys: Vec<String>,
    value: toml::Value,
}

/// Deserializes `text` (from `origin`, `None` when there is no file) with the overrides in `env`.
pub(super) fn settings(
    text: &str,
    origin: Option<&str>,
    env: &BTreeMap<String, String>,
) -> Result<Settings, ConfigError> {
    let overrides = overrides(env)?;
    // The file alone first, so a mistake in it is reported with its line and column; unless an
    // override touches the key at fault, which may set what the file lacks or replace its value.
    match serde_path_to_error::deserialize(parse(text, origin)?) {
        Ok(settings) if overrides.is_empty() => return Ok(settings),
        Ok(_) => {}
        Err(error) => {
            let path = key_path(error.path());
            if !overrides.iter().any(|o| related(&o.keys, &path)) {
                return Err(file_error(text, origin, &path, error.inner()));
            }
        }
    }
    let mut table: toml::Table = toml::from_str(text).map_err(|e| invalid_file(text, origin, e))?;
    for o in &overrides {
        overlay(&mut table, &o.keys, o.value.clone()).map_err(|message| ConfigError::Invalid {
            origin: Some(o.variable.clone()),
            message: format!("{}: {message}", o.keys.join(".")),
        })?;
    }
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|error| {
        let path = key_path(error.path());
        let message = error.inner().message().to_owned();
        match overrides.iter().find(|o| related(&o.keys, &path)) {
            Some(o) => ConfigError::Invalid {
                origin: Some(o.variable.clone()),
                message: format!("{}: {message}", shown(&path, &o.keys)),
            },
            None => ConfigError::Invalid {
                origin: origin.map(str::to_owned),
                message: format!("{}: {message}", shown(&path, &[])),
            },
        }
    })
}

/// The overrides in `env`, by variable name (the map's order, so the result is stable).
fn overrides(env: &BTreeMap<String, String>) -> Result<Vec<Override>, ConfigError> {
    let mut found = Vec::new();
    for (name, value) in env {
        let Some(path) = name
            .strip_prefix("HERALD_")
            .filter(|rest| rest.contains("__"))
        else {
            continue;
        };
        if path.matches("__").count() >= MAX_OVERRIDE_DEPTH {
            let shown: String = name.chars().take(60).collect();
            return Err(ConfigError::Invalid {
                origin: Some(format!("{shown}…")),
                message: format!("more than {MAX_OVERRIDE_DEPTH} levels of keys"),
            });
        }
        let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
        if keys.iter().any(String::is_empty) {
            return Err(ConfigError::Invalid {
                origin: Some(name.clone()),
                message: "an empty key: sections and keys are separated by exactly two \
                          underscores (HERALD_SENDERS__MAIN__PER_SECOND)"
                    .into(),
            });
        }
        found.push(Override {
            variable: name.clone(),
            keys,
            value: parse_env_value(value),
        });
    }
    Ok(found)
}

/// The file as TOML, or its syntax error with line and column.
fn parse<'t>(text: &'t str, origin: Option<&str>) -> Result<toml::Deserializer<'t>, ConfigError> {
    toml::Deserializer::parse(text).map_err(|e| invalid_file(text, origin, e))
}

fn invalid_file(text: &str, origin: Option<&str>, error: toml::de::Error) -> ConfigError {
    file_error(text, origin, &[], &error)
}

/// `file:line:col` and `key: message` for a mistake in the file.
fn file_error(
    text: &str,
    origin: Option<&str>,
    path: &[String],
    error: &toml::de::Error,
) -> ConfigError {
    let origin = origin.unwrap_or("herald.toml");
    let at = match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{origin}:{line}:{column}")
        }
        None => origin.to_owned(),
    };
    let message = error.message();
    ConfigError::Invalid {
        origin: Some(at),
        message: if path.is_empty() {
            message.to_owned()
        } else {
            format!("{}: {message}", path.join("."))
        },
    }
}

/// The path serde was at, as keys (`senders.main.per_second`).
fn key_path(path: &serde_path_to_error::Path) -> Vec<String> {
    path.iter()
        .map(|segment| match segment {
            Segment::Map { key } => key.clone(),
            Segment::Seq { index } => index.to_string(),
            Segment::Enum { variant } => variant.clone(),
            Segment::Unknown => "?".to_owned(),
        })
        .collect()
}

/// An override is related to an error at `path` when one is a prefix of the other: it set the
/// key at fault, something inside it, or the table it is in.
fn related(keys: &[String], path: &[String]) -> bool {
    let n = keys.len().min(path.len());
    keys[..n] == path[..n]
}

/// The key to name: where serde was when it failed, else what the override set.
fn shown(path: &[String], keys: &[String]) -> String {
    match (path, keys) {
        ([], []) => "(top level)".to_owned(),
        ([], keys) => keys.join("."),
        (path, _) => path.join("."),
    }
}

/// An override's value: an integer or a boolean when it reads as one, else a string (so a
/// number where text is expected fails loudly rather than being guessed).
fn parse_env_value(value: &str) -> toml::Value {
    if let Ok(n) = value.parse::<i64>() {
        return toml::Value::Integer(n);
    }
    match value {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(value.to_owned()),
    }
}

fn overlay(table: &mut toml::Table, keys: &[String], value: toml::Value) -> Result<(), String> {
    match keys {
        [] => Err("empty key".into()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(inner) => overlay(inner, rest, value),
                _ => Err(format!("{first} is not a section")),
            }
        }
    }
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

    const HOOK: &str = "[senders.hook]\nchannel = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\n";

    fn error(text: &str, vars: &[(&str, &str)]) -> String {
        settings(text, Some("h.toml"), &env(vars))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_bad_override_names_the_variable_and_the_key() {
        let cases = [
            (
                ("HERALD_SENDERS__HOOK__PER_SECOND", "abc"),
                "invalid config HERALD_SENDERS__HOOK__PER_SECOND: senders.hook.per_second: invalid type: string \"abc\"",
            ),
            (
                ("HERALD_SENDERS__HOOK__PER_SECONDS", "5"),
                "invalid config HERALD_SENDERS__HOOK__PER_SECONDS: senders.hook.per_seconds: unknown field `per_seconds`",
            ),
            (
                ("HERALD_WORKER__BATCH", "-1"),
                "invalid config HERALD_WORKER__BATCH: worker.batch: invalid value: integer `-1`",
            ),
            (
                ("HERALD_SENDERS__NEW__PER_SECOND", "5"),
                "invalid config HERALD_SENDERS__NEW__PER_SECOND: senders.new: missing field `channel`",
            ),
            (
                ("HERALD_SENDERS__HOOK__URL__X", "1"),
                "invalid config HERALD_SENDERS__HOOK__URL__X: senders.hook.url.x: url is not a section",
            ),
            (
                ("HERALD_SENDERS____URL", "x"),
                "invalid config HERALD_SENDERS____URL: an empty key",
            ),
        ];
        for ((var, value), expected) in cases {
            let message = error(HOOK, &[(var, value)]);
            assert!(message.starts_with(expected), "{var}={value}: {message}");
        }
    }

    #[test]
    fn a_mistake_in_the_file_names_the_key_with_line_and_column() {
        let message = error(&format!("{HOOK}per_second = \"abc\"\n"), &[]);
        assert!(
            message.starts_with(
                "invalid config h.toml:4:14: senders.hook.per_second: invalid type: string \"abc\""
            ),
            "{message}"
        );
        let message = error(&format!("{HOOK}per_secnd = 5\n"), &[]);
        assert!(message.contains("h.toml:4:1"), "{message}");
        assert!(message.contains("unknown field `per_secnd`"), "{message}");
        let message = error("[senders.hook\n", &[]);
        assert!(message.starts_with("invalid config h.toml:1:"), "{message}");
        // An unrelated override leaves the file's own mistake where it is.
        let message = error(
            &format!("{HOOK}per_second = \"abc\"\n"),
            &[("HERALD_WORKER__BATCH", "8")],
        );
        assert!(
            message.starts_with("invalid config h.toml:4:14: "),
            "{message}"
        );
    }

    #[test]
    fn an_override_can_supply_or_replace_what_the_file_has() {
        let text = format!("{HOOK}per_second = \"abc\"\n[senders.other]\nurl = \"http://x/\"\n");
        let settings = settings(
            &text,
            Some("h.toml"),
            &env(&[
                ("HERALD_SENDERS__HOOK__PER_SECOND", "7"),
                ("HERALD_SENDERS__OTHER__CHANNEL", "webhook"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.senders["hook"].rate(), 7);
        assert_eq!(
            settings.senders["other"].channel,
            crate::config::ChannelKind::Webhook
        );
    }
}
