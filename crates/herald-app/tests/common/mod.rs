//! What the recurring-campaign tests share: a project (an audience of [`PEOPLE`] in UTC, the
//! campaign `c.yaml` with id `hourly`, an outbox sender, a SQLite store or the `[store]` line
//! given), its stores (a Redis one created by `init` first), a scheduler's campaign set, and
//! the campaign's fire records as `(fire, outcome)` pairs.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use herald_app::recurring::CampaignSet;
use herald_app::schedule::CampaignFile;
use herald_app::{AnyStores, Settings, open_store};
use herald_store::{FireOutcome, FireRecord, Fires, Stores};

pub(crate) fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub(crate) const PEOPLE: usize = 4;

pub(crate) fn campaign(schedule: &str) -> String {
    format!(
        "id: hourly\npurpose: transactional\naudience: {{ source: people.csv }}\n\
         template: {{ name: notice, language: en }}\nschedule: {schedule}\n"
    )
}

/// A project in `dir` (audience, `c.yaml` of `schedule`, an outbox sender, the store: SQLite
/// in `dir` unless `store` names another `[store]` line).
pub(crate) fn project(dir: &Path, schedule: &str, store: Option<String>) -> Settings {
    let mut csv = String::from("id,phone,timezone\n");
    for i in 0..PEOPLE {
        writeln!(csv, "p{i},+7 916 {:07},Etc/UTC", 4_000_000 + i).unwrap();
    }
    std::fs::write(dir.join("people.csv"), csv).unwrap();
    std::fs::write(dir.join("c.yaml"), campaign(schedule)).unwrap();
    let store =
        store.unwrap_or_else(|| format!("sqlite = \"{}\"", dir.join("herald.db").display()));
    let config = format!(
        "[store]\n{store}\n[senders.main]\nchannel = \"outbox\"\npath = \"{}\"\nper_second = 1000\n",
        dir.join("outbox.jsonl").display()
    );
    std::fs::write(dir.join("herald.toml"), config).unwrap();
    Settings::load(Some(&dir.join("herald.toml")), &BTreeMap::new()).unwrap()
}

pub(crate) async fn stores_of(settings: &Settings) -> AnyStores {
    if settings.store.redis.is_some() {
        herald_app::init_store(settings, &BTreeMap::new())
            .await
            .unwrap();
    }
    open_store(settings, &BTreeMap::new()).await.unwrap()
}

pub(crate) fn set_of(dir: &Path) -> CampaignSet {
    let file = CampaignFile::load(&dir.join("c.yaml"), at("2026-01-01T00:00:00Z")).unwrap();
    CampaignSet::new(vec![file], None)
}

/// A campaign directory `dir/campaigns` holding the audience and `c.yaml`.
pub(crate) fn campaigns_dir(dir: &Path) -> std::path::PathBuf {
    let campaigns = dir.join("campaigns");
    std::fs::create_dir(&campaigns).unwrap();
    std::fs::copy(dir.join("people.csv"), campaigns.join("people.csv")).unwrap();
    std::fs::copy(dir.join("c.yaml"), campaigns.join("c.yaml")).unwrap();
    campaigns
}

/// Every fire record of `hourly`, oldest first.
pub(crate) async fn fires(stores: &AnyStores) -> Vec<FireRecord> {
    let mut all = stores.fires().fires("hourly", 1_000).await.unwrap();
    all.reverse();
    all
}

pub(crate) fn outcomes(records: &[FireRecord]) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| {
            let what = match &r.outcome {
                FireOutcome::Run(run) => format!("run {run}"),
                FireOutcome::Skipped(skip) => skip.as_str().to_owned(),
            };
            (
                r.fire.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                what,
            )
        })
        .collect()
}

/// A `(fire, outcome)` pair as [`outcomes`] gives them.
pub(crate) fn pair(fire: &str, what: &str) -> (String, String) {
    (fire.to_owned(), what.to_owned())
}
