//! Campaign validation: every mistake reported once, at its line and column, and never a panic.

use std::path::Path;

use herald_campaign::Diagnostics;

const BASE: &str = r#"id: promo
purpose: marketing
audience:
  source: people.csv
template:
  name: promo
  language: { ru: ru, default: en }
  params:
    first_name: "{{ first_name | default('friend') }}"
schedule:
  at: 2026-12-01T10:00
send_window:
  hours: { mon-fri: "09:00-20:00" }
"#;

fn check(text: &str) -> Result<herald_campaign::Campaign, Diagnostics> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("people.csv"), "phone\n+79161234567\n").unwrap();
    herald_campaign::parse("c.yaml", dir.path(), text, now())
}

/// The instant campaigns are checked at.
fn now() -> chrono::DateTime<chrono::Utc> {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

fn messages(text: &str) -> Vec<String> {
    check(text)
        .map(|_| Vec::new())
        .unwrap_or_else(|d| d.0.iter().map(ToString::to_string).collect())
}

#[test]
fn the_base_campaign_is_valid() {
    let campaign = check(BASE).unwrap();
    assert_eq!(campaign.id.as_str(), "promo");
    assert_eq!(campaign.template.params.len(), 1);
    assert!(Path::new(&campaign.audience.source).ends_with("people.csv"));
}

#[test]
fn nested_unknown_fields_get_a_suggestion() {
    let got = messages(&BASE.replace("  language:", "  langauge:"));
    assert_eq!(
        got,
        ["c.yaml:7:3: unknown field `langauge` in template; did you mean `language`?"]
    );
    let got = messages(&BASE.replace("schedule:\n", "schedule:\n  colour: red\n"));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(
            "c.yaml:11:3: unknown field `colour` in schedule; expected one of at, in, cron"
        ),
        "{got:?}"
    );
}

#[test]
fn odd_values_are_diagnosed_not_panics() {
    let cases = [
        (
            "send_window:\n  hours: { mon-fri: \"09:00-20:00\" }\n",
            "frequency_cap:\n  - { max: 2, per: 7д }\n",
            "invalid cap period",
        ),
        (
            "schedule:\n  at: 2026-12-01T10:00\n",
            "schedule:\n  at: 2026-12-01T10:00\n  expires_after: 10м\n",
            "invalid expires_after",
        ),
        (
            "schedule:\n  at: 2026-12-01T10:00\n",
            "schedule:\n  at: +262142-06-01T10:00\n",
            "invalid schedule.at",
        ),
        (
            "  name: promo\n",
            "  name: Promo Sale\n",
            "invalid template name",
        ),
        (
            "  hours: { mon-fri: \"09:00-20:00\" }\n",
            "  hours: { mon-fry: \"09:00-20:00\" }\n",
            "invalid days \"mon-fry\"",
        ),
        (
            "  hours: { mon-fri: \"09:00-20:00\" }\n",
            "  preset: [ru-business, eu-business]\n",
            "both set business hours",
        ),
        (
            "  hours: { mon-fri: \"09:00-20:00\" }\n",
            "  preset: us-tcpaa\n",
            "did you mean `us-tcpa`?",
        ),
        (
            "  hours: { mon-fri: \"09:00-20:00\" }\n",
            "  hours: { mon-fri: \"09:00-20:00\" }\n  holidays: [fr]\n",
            "unknown holiday calendar \"fr\"",
        ),
        (
            "  hours: { mon-fri: \"09:00-20:00\" }\n",
            "  hours: { daily: \"22:00-23:00\" }\n  preset: us-tcpa\n",
            "never open",
        ),
        (
            "  language: { ru: ru, default: en }\n",
            "  language: { ru: ru }\n",
            "needs a `default`",
        ),
        (
            "  source: people.csv\n",
            "  source: nobody.csv\n",
            "audience file `nobody.csv` not found",
        ),
        (
            "  source: people.csv\n",
            "  source: people.xlsx\n",
            "must be .csv, .jsonl or .ndjson",
        ),
        (
            "schedule:\n  at: 2026-12-01T10:00\n",
            "schedule:\n  at: 2026-12-01T10:00\n  cron: \"0 10 * * 1\"\n",
            "either `at`",
        ),
        (
            "schedule:\n  at: 2026-12-01T10:00\n",
            "schedule:\n  cron: \"0 10 * * 1\"\n",
            "needs `timezone`",
        ),
        (
            "schedule:\n  at: 2026-12-01T10:00\n",
            "schedule:\n  cron: \"0 10 * *\"\n  timezone: Europe/Moscow\n",
            "expected 5 fields",
        ),
        (
            "schedule:\n  at: 2026-12-01T10:00\n",
            "schedule:\n  at: 2026-12-01T10:00\n  in: Europe/Moskow\n",
            "unknown time zone \"Europe/Moskow\"",
        ),
        (
            "    first_name: \"{{ first_name | default('friend') }}\"\n",
            "    first_name: \"{{ first_name | upper }}\"\n",
            "invalid placeholder",
        ),
        ("id: promo\n", "id: Promo!\n", "campaign id \"Promo!\""),
        (
            "purpose: marketing\n",
            "purpose: marketing\npurpose: service\n",
            "duplicate key `purpose`",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(BASE.contains(from), "{from:?} not in the base");
        let text = BASE.replacen(from, to, 1);
        let got = messages(&text);
        assert!(
            got.iter().any(|m| m.contains(expected)),
            "{to:?}: expected {expected:?} in {got:?}"
        );
        assert!(got.iter().all(|m| m.starts_with("c.yaml:")), "{got:?}");
    }
}

#[test]
fn not_a_mapping_and_not_yaml() {
    assert_eq!(
        messages("- a\n- b\n"),
        ["c.yaml:1:1: the campaign must be a mapping, found a list"]
    );
    let broken = messages("id: x\ntemplate: { name: [\n");
    assert_eq!(broken.len(), 1);
    assert!(broken[0].contains("invalid YAML"), "{broken:?}");
    assert_eq!(
        messages(""),
        ["c.yaml:1:1: the file is empty: expected a campaign mapping"]
    );
}

#[test]
fn law_presets_bring_their_caps() {
    let text = BASE.replace(
        "  hours: { mon-fri: \"09:00-20:00\" }\n",
        "  preset: [us-tcpa, us-fl]\n",
    );
    let campaign = check(&text).unwrap();
    assert_eq!(campaign.caps.len(), 1);
    assert_eq!(campaign.caps[0].max, 3);
}
