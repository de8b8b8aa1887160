//! Properties of the config loader: whatever the file and the `HERALD_…__…` variables hold,
//! `Settings::load` returns settings or an error and never panics; an error about a key names
//! that key (and the variable, when an override set it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use herald_app::Settings;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

/// Every key the loader knows, by section.
const SENDER_KEYS: &[&str] = &[
    "channel",
    "path",
    "url",
    "secret_env",
    "phone_number_id",
    "token_env",
    "base_url",
    "api_version",
    "tier_limit",
    "per_second",
    "timeout_seconds",
];
/// Numeric keys of a sender, each with a value that is valid for every channel.
const SENDER_NUMBERS: &[(&str, i64)] = &[
    ("tier_limit", 250),
    ("per_second", 5),
    ("timeout_seconds", 3),
];
/// Names that are not keys.
const UNKNOWN: &[&str] = &["foo", "per_secnd", "x"];

fn load(
    text: &[u8],
    env: &BTreeMap<String, String>,
) -> (tempfile::TempDir, Result<Settings, String>) {
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("herald.toml");
    std::fs::write(&file, text).unwrap();
    let result = Settings::load(Some(&file), env).map_err(|e| e.to_string());
    (dir, result)
}

/// A leaf value of any TOML type.
fn leaf() -> impl Strategy<Value = toml::Value> {
    prop_oneof![
        any::<i64>().prop_map(toml::Value::Integer),
        (0i64..2000).prop_map(toml::Value::Integer),
        "[a-z0-9:/._ -]{0,12}".prop_map(toml::Value::String),
        any::<bool>().prop_map(toml::Value::Boolean),
        (-1e3f64..1e3).prop_map(toml::Value::Float),
        vec((0i64..9).prop_map(toml::Value::Integer), 0..3).prop_map(toml::Value::Array),
    ]
}

fn key() -> impl Strategy<Value = String> {
    let names: Vec<&'static str> = SENDER_KEYS
        .iter()
        .chain(UNKNOWN)
        .chain(&[
            "store", "senders", "worker", "sqlite", "batch", "main", "wa", "hook",
        ])
        .copied()
        .collect();
    proptest::sample::select(names).prop_map(str::to_owned)
}

/// Tables three levels deep whose keys are mostly the loader's own.
fn document() -> impl Strategy<Value = toml::Table> {
    let value = leaf().prop_recursive(3, 24, 4, |inner| {
        btree_map(key(), inner, 0..4).prop_map(|m| toml::Value::Table(m.into_iter().collect()))
    });
    btree_map(key(), value, 0..4).prop_map(|m| m.into_iter().collect())
}

/// `HERALD_A__B…` variables over the same names, with values of every shape.
fn overrides() -> impl Strategy<Value = BTreeMap<String, String>> {
    let name = vec(key(), 1..4).prop_map(|keys| {
        format!(
            "HERALD_{}",
            keys.iter()
                .map(|k| k.to_ascii_uppercase())
                .collect::<Vec<_>>()
                .join("__")
        )
    });
    let value = prop_oneof!["-?[0-9]{1,20}", "true|false", "[a-z0-9:/._ -]{0,12}"];
    btree_map(name, value, 0..3)
}

/// The names a document and its overrides use, plus every key the loader knows.
fn names_in(table: &toml::Table, env: &BTreeMap<String, String>) -> BTreeSet<String> {
    fn walk(table: &toml::Table, names: &mut BTreeSet<String>) {
        for (key, value) in table {
            names.insert(key.clone());
            if let toml::Value::Table(inner) = value {
                walk(inner, names);
            }
        }
    }
    let mut names = BTreeSet::new();
    walk(table, &mut names);
    for variable in env.keys() {
        let path = variable.trim_start_matches("HERALD_");
        names.extend(path.split("__").map(str::to_ascii_lowercase));
    }
    names.extend(
        SENDER_KEYS
            .iter()
            .chain(&["store", "senders", "worker", "sqlite", "batch"])
            .map(|k| (*k).to_owned()),
    );
    names
}

/// `invalid config ORIGIN: KEY.PATH: what` or `invalid config: KEY.PATH: what`: the key path.
fn named_key(message: &str) -> Option<&str> {
    let rest = match message.strip_prefix("invalid config: ") {
        Some(rest) => rest,
        None => message.strip_prefix("invalid config ")?.split_once(": ")?.1,
    };
    let (key, _what) = rest.split_once(": ")?;
    Some(key)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..2048), env in overrides()) {
        let _ = load(&bytes, &env);
    }

    #[test]
    fn toml_shaped_text_never_panics(text in "([a-z_]{1,8} ?= ?([0-9]{1,3}|\"[a-z]{0,4}\"|true|\\[[0-9, ]{0,6}\\]|\\{[a-z =0-9,]{0,12}\\})\n|\\[\\[?[a-z_.]{1,16}\\]\\]?\n|[\\[\\]{}=\",.#a-z0-9 \n]{0,12}){0,12}") {
        let _ = load(text.as_bytes(), &BTreeMap::new());
    }

    #[test]
    fn structured_documents_load_or_name_the_key_at_fault(table in document(), env in overrides()) {
        let text = toml::to_string(&table);
        prop_assume!(text.is_ok());
        let text = text.unwrap();
        let (_dir, result) = load(text.as_bytes(), &env);
        if let Err(message) = result {
            let key = named_key(&message);
            prop_assert!(key.is_some(), "no key in {message:?} for\n{text}\n{env:?}");
            let names = names_in(&table, &env);
            for segment in key.unwrap_or_default().split('.') {
                // A sender's name, a key, or an array index.
                prop_assert!(
                    names.contains(segment) || segment.parse::<usize>().is_ok(),
                    "{segment:?} of {message:?} is not in\n{text}\n{env:?}"
                );
            }
            if let Some(variable) = message
                .strip_prefix("invalid config ")
                .and_then(|rest| rest.split(':').next())
                .filter(|origin| origin.starts_with("HERALD_"))
            {
                prop_assert!(env.contains_key(variable), "{message:?} for {env:?}");
            }
        }
    }

    #[test]
    fn a_number_given_text_names_its_key_in_the_file_and_in_an_override(
        // No `__` and no `_` at either end: those would split differently as a variable name.
        name in "[a-z]([a-z0-9]|_[a-z0-9]){0,4}",
        which in 0..SENDER_NUMBERS.len(),
        text in "[a-z][a-z ]{0,8}",
        from_env in any::<bool>(),
    ) {
        let (key, valid) = SENDER_NUMBERS[which];
        let value = if from_env { valid.to_string() } else { format!("{text:?}") };
        let file = format!(
            "[senders.{name}]\nchannel = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n{key} = {value}\n"
        );
        let variable = format!("HERALD_SENDERS__{}__{}", name.to_ascii_uppercase(), key.to_ascii_uppercase());
        let env: BTreeMap<String, String> = if from_env {
            [(variable.clone(), text.clone())].into()
        } else {
            BTreeMap::new()
        };
        let (_dir, result) = load(file.as_bytes(), &env);
        let message = result.unwrap_err();
        prop_assert!(message.contains(&format!("senders.{name}.{key}: invalid type")), "{message}");
        if from_env {
            prop_assert!(message.starts_with(&format!("invalid config {variable}: ")), "{message}");
        } else {
            prop_assert!(message.starts_with("invalid config "), "{message}");
            prop_assert!(message.contains("herald.toml:4:"), "{message}");
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for (open, close) in [("[", "]"), ("{a=", "}")] {
        let text = format!("a = {}1{}\n", open.repeat(100_000), close.repeat(100_000));
        let (_dir, result) = load(text.as_bytes(), &BTreeMap::new());
        assert!(result.is_err());
    }
    let dotted = format!("{} = 1\n", vec!["a"; 100_000].join("."));
    let (_dir, result) = load(dotted.as_bytes(), &BTreeMap::new());
    assert!(result.is_err());
}

#[test]
fn a_deep_override_is_an_error_naming_it() {
    let variable = format!("HERALD_{}", vec!["A"; 40_000].join("__"));
    let env: BTreeMap<String, String> = [(variable.clone(), "1".to_owned())].into();
    let (_dir, result) = load(b"", &env);
    let message = result.unwrap_err();
    assert!(message.contains(&variable[..40]), "{}", &message[..200]);
}
