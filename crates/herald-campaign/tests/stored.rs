//! A campaign rebuilt from the text its run stored: no audience file needed, and the same
//! campaign as the file gives when the audience is there.

use std::path::Path;

use herald_campaign::Campaign;

const TEXT: &str = r#"id: promo
purpose: marketing
audience:
  source: people.csv
  where:
    country: RU
template:
  name: promo
  language: { ru: ru, default: en }
  params:
    first_name: "{{ first_name | default('friend') }}"
schedule:
  at: 2026-12-01T10:00
send_window:
  hours: { mon-fri: "09:00-20:00" }
frequency_cap:
  - { max: 1, per: 1d, scope: purpose }
"#;

/// The instant campaigns are checked at.
fn now() -> chrono::DateTime<chrono::Utc> {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

/// Everything a campaign holds, for comparing two of them (`Campaign` has no `PartialEq`:
/// nothing else needs one).
fn shape(campaign: &Campaign) -> String {
    format!("{campaign:?}")
}

#[test]
fn a_stored_campaign_parses_without_its_audience_file() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!dir.path().join("people.csv").exists());
    let campaign = herald_campaign::parse_stored("run", dir.path(), TEXT, now()).unwrap();
    assert_eq!(campaign.id.as_str(), "promo");
    assert_eq!(campaign.caps.len(), 1);
    assert!(Path::new(&campaign.audience.source).ends_with("people.csv"));
    assert_eq!(campaign.audience.source_as_written, "people.csv");
    // The file-checking parse refuses the same text: the mode is what makes the difference.
    let refused = herald_campaign::parse("run", dir.path(), TEXT, now()).unwrap_err();
    assert!(
        refused.0.iter().any(|d| d.message.contains("not found")),
        "{refused:?}"
    );
}

#[test]
fn a_stored_campaign_is_the_campaign_the_file_gives() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("people.csv"), "phone\n+79161234567\n").unwrap();
    let file = dir.path().join("promo.yaml");
    std::fs::write(&file, TEXT).unwrap();
    let loaded = herald_campaign::load(&file, now()).unwrap();
    let label = file.display().to_string();
    let stored = herald_campaign::parse_stored(&label, dir.path(), TEXT, now()).unwrap();
    assert_eq!(shape(&stored), shape(&loaded));
}

#[test]
fn a_stored_campaign_is_still_checked_for_everything_else() {
    let dir = tempfile::tempdir().unwrap();
    let broken = TEXT.replace("purpose: marketing", "purpose: spam");
    let problems = herald_campaign::parse_stored("run", dir.path(), &broken, now()).unwrap_err();
    assert_eq!(problems.0.len(), 1, "{problems:?}");
    assert!(problems.0[0].message.contains("spam"), "{problems:?}");
    // An audience of the wrong format is refused without looking at the disk.
    let wrong = TEXT.replace("people.csv", "people.xlsx");
    let problems = herald_campaign::parse_stored("run", dir.path(), &wrong, now()).unwrap_err();
    assert!(
        problems.0[0].message.contains(".csv, .jsonl or .ndjson"),
        "{problems:?}"
    );
}
