//! The deploy files cannot drift from the binary: every `herald …` command line under
//! `deploy/` (the Dockerfile's CMD under its `herald` entrypoint, each compose service's
//! `command:`, each systemd unit's `ExecStart=`) is parsed with the real CLI parser (the very
//! `src/cli.rs` the binary is built from), and `deploy/herald.toml` with the real config loader.
//! Docker is not run here: the images are not built by any test.

#[allow(dead_code, unreachable_pub)]
#[path = "../src/cli.rs"]
mod cli;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Every file under `dir`, recursively, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// A JSON array of strings after `prefix` on `line` (`CMD [...]`, `command: [...]`).
fn json_list(line: &str, prefix: &str) -> Option<Vec<String>> {
    let rest = line.trim().strip_prefix(prefix)?.trim();
    Some(serde_json::from_str(rest).unwrap_or_else(|e| panic!("{line:?}: not a JSON list: {e}")))
}

/// The herald command lines of one deploy file, each as argv (starting with `herald`).
fn herald_commands(path: &Path, text: &str) -> Vec<Vec<String>> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let herald = |args: Vec<String>| {
        let mut argv = vec!["herald".to_owned()];
        argv.extend(args);
        argv
    };
    let mut commands = Vec::new();
    if name == "Dockerfile" {
        let entrypoint = text.lines().find_map(|l| json_list(l, "ENTRYPOINT"));
        assert_eq!(entrypoint, Some(vec!["herald".to_owned()]), "{name}");
        commands.extend(text.lines().filter_map(|l| json_list(l, "CMD")).map(herald));
    } else if name.ends_with(".yml") || name.ends_with(".yaml") {
        assert!(
            !text.contains("entrypoint:"),
            "{name}: the image's entrypoint is herald"
        );
        for list in text.lines().filter_map(|l| json_list(l, "command:")) {
            if list.first().map(String::as_str) == Some("redis-server") {
                continue;
            }
            commands.push(herald(list));
        }
    } else if name.ends_with(".service") {
        for line in text.lines() {
            let Some(exec) = line.trim().strip_prefix("ExecStart=") else {
                continue;
            };
            let mut words = exec.split_whitespace().map(str::to_owned);
            let program = words.next().unwrap();
            assert!(program.ends_with("/herald"), "{name}: {exec}");
            commands.push(herald(words.collect()));
        }
    }
    commands
}

#[test]
fn every_herald_command_line_in_deploy_parses_with_the_real_cli() {
    let mut parsed = BTreeMap::<String, usize>::new();
    for path in files(&deploy()) {
        let text = std::fs::read_to_string(&path).unwrap();
        for argv in herald_commands(&path, &text) {
            let cli = cli::Cli::try_parse_from(&argv)
                .unwrap_or_else(|e| panic!("{}: {argv:?} does not parse:\n{e}", path.display()));
            let role = match cli.command {
                cli::Command::Scheduler(_) => "scheduler",
                cli::Command::Worker(_) => "worker",
                cli::Command::Admin(_) => "admin",
                _ => "other",
            };
            *parsed.entry(role.to_owned()).or_default() += 1;
        }
    }
    // Dockerfile CMD + two compose workers + the systemd template; compose + systemd schedulers;
    // compose + systemd admins.
    assert_eq!(parsed.get("worker"), Some(&4), "{parsed:?}");
    assert_eq!(parsed.get("scheduler"), Some(&2), "{parsed:?}");
    assert_eq!(parsed.get("admin"), Some(&2), "{parsed:?}");
    assert_eq!(parsed.get("other"), None, "{parsed:?}");
}

#[test]
fn the_deploy_config_loads_with_the_real_loader_and_names_redis() {
    let file = deploy().join("herald.toml");
    let settings = herald_app::Settings::load(Some(&file), &BTreeMap::new())
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let store = &settings.store;
    assert_eq!(
        store.redis.as_ref().map(|u| u.as_str()),
        Some("redis://redis:6379/0")
    );
    assert_eq!(
        store.redis_password_env.as_deref(),
        Some("HERALD_REDIS_PASSWORD")
    );
    // The admin listens beyond loopback only with a token; the workers serve /metrics.
    assert!(settings.admin.listen.is_some(), "[admin] listen");
    assert_eq!(
        settings.admin.token_env.as_deref(),
        Some("HERALD_ADMIN_TOKEN")
    );
    assert!(settings.metrics.listen.is_some(), "[metrics] listen");
    assert!(
        settings.webhooks.verify_token_env.is_some(),
        "[webhooks] verify_token_env"
    );
    for sender in settings.senders.values() {
        if sender.phone_number_id.is_some() {
            assert!(sender.app_secret_env.is_some(), "app_secret_env");
        }
    }
    // The sample config beside it loads too.
    let sample = deploy().join("herald.toml.sample");
    herald_app::Settings::load(Some(&sample), &BTreeMap::new())
        .unwrap_or_else(|e| panic!("{}: {e}", sample.display()));
}

/// Compose and systemd both run the admin API (`herald admin`) beside the workers.
#[test]
fn compose_and_systemd_run_the_admin() {
    for file in ["docker-compose.yml", "systemd/herald-admin.service"] {
        let path = deploy().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let commands = herald_commands(&path, &text);
        assert!(
            commands
                .iter()
                .any(|argv| argv.iter().any(|a| a == "admin")),
            "{file}: no `herald admin` in {commands:?}"
        );
    }
}

/// Compose runs Redis with the persistence Herald requires (it refuses one without AOF).
#[test]
fn compose_runs_redis_with_an_append_only_file() {
    let text = std::fs::read_to_string(deploy().join("docker-compose.yml")).unwrap();
    let redis = text
        .lines()
        .filter_map(|l| json_list(l, "command:"))
        .find(|list| list.first().map(String::as_str) == Some("redis-server"))
        .expect("a redis-server command");
    let joined = redis.join(" ");
    assert!(joined.contains("--appendonly yes"), "{joined}");
    assert!(joined.contains("--appendfsync always"), "{joined}");
    assert!(
        text.contains("redis-data:/data"),
        "Redis keeps its AOF on a volume"
    );
}
