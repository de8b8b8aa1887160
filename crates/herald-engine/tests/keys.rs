//! Every audience row is one delivery of its own, whatever its id: expansion into a real SQLite
//! file stores one delivery per row, and queues exactly the rows that are the first with their
//! id and phone. Ids run through every length up to the limit and include ones that look like
//! synthetic keys (`invalid`, `line:7`, `x#line9`, another row's phone), repeated ids and
//! phones, and broken rows.

mod common;
use common::registered;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use herald_engine::expand::expand_with_readers;
use herald_store::{Deliveries, Stores};
use herald_store_sqlite::SqliteStores;
use proptest::prelude::*;

/// The phones rows pick from: few, so that they repeat.
const PHONES: [&str; 5] = [
    "+79160000001",
    "+79160000002",
    "+79160000003",
    "+79160000004",
    "+79160000005",
];

/// One generated audience row.
#[derive(Debug, Clone)]
enum Row {
    /// A readable row: its `id` cell (`None`: blank) and its phone.
    Valid { id: Option<String>, phone: usize },
    /// A row that cannot be read: its `id` and `phone` cells as written.
    Broken { id: String, phone: String },
}

/// The campaign of `rows`, written as CSV or JSONL into `dir`: always open, no `where`.
fn write_campaign(dir: &Path, rows: &[Row], jsonl: bool) -> std::path::PathBuf {
    let cells = |row: &Row| -> (String, String) {
        match row {
            Row::Valid { id, phone } => (id.clone().unwrap_or_default(), PHONES[*phone].into()),
            Row::Broken { id, phone } => (id.clone(), phone.clone()),
        }
    };
    let (name, text) = if jsonl {
        let lines: Vec<String> = rows
            .iter()
            .map(|row| {
                let (id, phone) = cells(row);
                serde_json::json!({ "id": id, "phone": phone, "timezone": "Europe/Moscow" })
                    .to_string()
            })
            .collect();
        ("people.jsonl", lines.join("\n") + "\n")
    } else {
        let quote = |cell: &str| format!("\"{}\"", cell.replace('"', "\"\""));
        let mut text = String::from("id,phone,timezone\n");
        for row in rows {
            let (id, phone) = cells(row);
            text.push_str(&format!("{},{},Europe/Moscow\n", quote(&id), quote(&phone)));
        }
        ("people.csv", text)
    };
    std::fs::write(dir.join(name), text).unwrap();
    let yaml = format!(
        "id: keys\npurpose: marketing\naudience: {{ source: {name} }}\n\
         template: {{ name: promo, language: en }}\n\
         schedule: {{ at: 2026-11-30T10:00, in: recipient }}\n\
         send_window: {{ hours: {{ daily: \"00:00-24:00\" }} }}\n"
    );
    std::fs::write(dir.join("c.yaml"), yaml).unwrap();
    dir.join("c.yaml")
}

/// What the store must hold, worked out from the rows alone: the key of every first-seen row
/// by its line, and how many rows are duplicates and broken.
#[derive(Debug, Default, PartialEq, Eq)]
struct Expected {
    queued: BTreeMap<u64, String>,
    duplicate: u64,
    invalid: u64,
}

fn expected(rows: &[Row], jsonl: bool) -> Expected {
    let first_line = if jsonl { 1 } else { 2 };
    let (mut ids, mut phones) = (HashSet::new(), HashSet::new());
    let mut out = Expected::default();
    for (i, row) in rows.iter().enumerate() {
        let line = first_line + i as u64;
        match row {
            Row::Broken { .. } => out.invalid += 1,
            Row::Valid { id, phone } => {
                // The id first; a repeated id does not record its phone.
                let repeated_id = id.as_ref().is_some_and(|id| !ids.insert(id.clone()));
                if repeated_id || !phones.insert(*phone) {
                    out.duplicate += 1;
                } else {
                    let key = match id {
                        Some(id) => id.clone(),
                        None => format!("phone {}", PHONES[*phone]),
                    };
                    out.queued.insert(line, key);
                }
            }
        }
    }
    out
}

/// An id of any length up to the limit, or one that reads like a key of another kind.
fn any_id() -> impl Strategy<Value = String> {
    let char = prop_oneof![
        4 => proptest::char::range('a', 'z'),
        1 => proptest::sample::select(vec![
            '#', ':', '+', '-', '"', ',', '\'', '{', '\\', '0', '7', 'é', '日', '😀',
        ]),
    ];
    let any_length = (1..=128usize)
        .prop_flat_map(move |len| proptest::collection::vec(char.clone(), len))
        .prop_map(|chars| chars.into_iter().collect::<String>());
    let lookalike = proptest::sample::select(vec![
        "invalid", "line:2", "line:3", "line:4", "x#line3", "line", "phone", "dup", PHONES[0],
        PHONES[1], PHONES[2],
    ])
    .prop_map(str::to_owned);
    let long = (0..4usize).prop_map(|n| format!("{}{n}", "L".repeat(127)));
    prop_oneof![3 => any_length, 2 => lookalike, 1 => long]
}

/// Rows over a small pool of ids, so that ids repeat too.
fn any_rows() -> impl Strategy<Value = Vec<Row>> {
    proptest::collection::vec(any_id(), 1..6).prop_flat_map(|pool| {
        let id = proptest::option::of(proptest::sample::select(pool));
        let valid = (id, 0..PHONES.len()).prop_map(|(id, phone)| Row::Valid { id, phone });
        let broken = prop_oneof![
            any_id().prop_map(|id| Row::Broken {
                id,
                phone: "12".into()
            }),
            (0..PHONES.len()).prop_map(|p| Row::Broken {
                id: "a b".into(),
                phone: PHONES[p].into()
            }),
            (0..PHONES.len()).prop_map(|p| Row::Broken {
                id: "x".repeat(129),
                phone: PHONES[p].into()
            }),
            any_id().prop_map(|id| Row::Broken {
                id,
                phone: String::new()
            }),
        ];
        proptest::collection::vec(prop_oneof![4 => valid, 1 => broken], 1..40)
    })
}

/// Expands `rows` into a new SQLite file and returns what it holds.
async fn stored(rows: &[Row], jsonl: bool, readers: usize) -> (Expected, u64) {
    let dir = tempfile::tempdir().unwrap();
    let campaign = herald_campaign::load(
        &write_campaign(dir.path(), rows, jsonl),
        reference_instant(),
    )
    .unwrap();
    let stores = SqliteStores::open(&dir.path().join("h.db")).unwrap();
    let now: DateTime<Utc> = "2026-11-30T10:00:05Z".parse().unwrap();
    let (run, _) = expand_with_readers(&stores, &campaign, registered("c.yaml"), now, readers)
        .await
        .unwrap();
    let counts = stores.deliveries().counts(&run).await.unwrap();
    let far: DateTime<Utc> = "2027-01-01T00:00:00Z".parse().unwrap();
    let queued = stores
        .deliveries()
        .due(far, rows.len() + 1)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.recipient.line, d.key.recipient.to_string()))
        .collect();
    let reason = |name: &str| counts.skipped.get(name).copied().unwrap_or(0);
    let found = Expected {
        queued,
        duplicate: reason("duplicate"),
        invalid: reason("invalid_recipient"),
    };
    (found, counts.total())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_row_is_stored_and_every_first_seen_row_queued(
        rows in any_rows(),
        jsonl in any::<bool>(),
        readers in 1..=3usize,
    ) {
        let (found, total) = runtime().block_on(stored(&rows, jsonl, readers));
        prop_assert_eq!(total, rows.len() as u64, "one delivery per row");
        prop_assert_eq!(found, expected(&rows, jsonl));
    }
}

/// The black-box case of issue 10: eight rows, of which today's keys kept five. A real id
/// `invalid`, duplicates whose `<id>#line<N>` passed 128 characters (and fell back to
/// `invalid`), a real id `line:7` beside a broken row on line 7, and a given id that reads like
/// the phone of a row without one.
#[test]
fn eight_rows_are_eight_deliveries() {
    let long = "L".repeat(125);
    let rows = [
        Row::Valid {
            id: Some("invalid".into()),
            phone: 0,
        },
        Row::Valid {
            id: Some(long.clone()),
            phone: 1,
        },
        Row::Valid {
            id: Some(long.clone()),
            phone: 2,
        },
        Row::Valid {
            id: Some(format!("{long}xy")),
            phone: 1,
        },
        Row::Valid {
            id: Some("line:7".into()),
            phone: 3,
        },
        Row::Broken {
            id: "x".into(),
            phone: "12".into(),
        },
        Row::Valid {
            id: Some(PHONES[4].into()),
            phone: 2,
        },
        Row::Valid { id: None, phone: 4 },
    ];
    let (found, total) = runtime().block_on(stored(&rows, false, 1));
    assert_eq!(total, 8);
    let queued: BTreeSet<u64> = found.queued.keys().copied().collect();
    assert_eq!(queued, BTreeSet::from([2, 3, 6, 8, 9]));
    assert_eq!(found, expected(&rows, false));
}

/// The instant validation measures the cron horizon from (these campaigns have no cron).
fn reference_instant() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_795_000_000, 0).expect("a valid instant")
}
