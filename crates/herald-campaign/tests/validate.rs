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

/// Issue 10 item 14: campaigns that validated and then failed or widened at send time. Each is
/// now a `file:line:col` error at the node that causes it.
#[test]
fn send_time_failures_are_validation_errors() {
    let long_header = format!("  header: {{ text: \"{}\" }}\n", "h".repeat(61));
    let buttons: String = (0..11)
        .map(|i| format!("    - {{ payload: b{i} }}\n"))
        .collect();
    let cases = [
        // A static header over 60 characters: every recipient was skipped.
        (
            "  name: promo\n",
            format!("  name: promo\n{long_header}"),
            "c.yaml:7:19: the header text is 61 characters; WhatsApp allows at most 60",
        ),
        // Fixed text around a placeholder counts too.
        (
            "  name: promo\n",
            format!(
                "  name: promo\n  header: {{ text: \"{{{{ first_name }}}} {}\" }}\n",
                "h".repeat(60)
            ),
            "c.yaml:7:19: the fixed text of the header text is 61 characters",
        ),
        // A static body parameter with a newline.
        (
            "    first_name: \"{{ first_name | default('friend') }}\"\n",
            "    first_name: \"two\\nlines\"\n".to_owned(),
            "c.yaml:9:17: parameter `first_name` contains a newline",
        ),
        (
            "  name: promo\n",
            format!("  name: promo\n  buttons:\n{buttons}"),
            "c.yaml:8:5: template.buttons has 11 buttons; WhatsApp allows at most 10",
        ),
        (
            "  language: { ru: ru, default: en }\n",
            "  language: { ru: \"\", default: en }\n".to_owned(),
            "c.yaml:7:19: invalid language code ``",
        ),
        (
            "  language: { ru: ru, default: en }\n",
            "  language: { ru: ru, default: \" \" }\n".to_owned(),
            "c.yaml:7:32: invalid language code ` `",
        ),
        (
            "  language: { ru: ru, default: en }\n",
            "  language: \"\"\n".to_owned(),
            "c.yaml:7:13: invalid language code ``",
        ),
        (
            "  language: { ru: ru, default: en }\n",
            "  language: { \"\": ru, default: en }\n".to_owned(),
            "c.yaml:7:15: a locale in template.language must not be empty",
        ),
        // February 30th never comes.
        (
            "schedule:\n  at: 2026-12-01T10:00\n",
            "schedule:\n  cron: \"0 10 30 2 *\"\n  timezone: Europe/Moscow\n".to_owned(),
            "c.yaml:11:9: cron `0 10 30 2 *` never fires in the 5 years after 2026-11-26",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(BASE.contains(from), "{from:?} not in the base");
        let got = messages(&BASE.replacen(from, &to, 1));
        assert!(
            got.iter().any(|m| m.starts_with(expected)),
            "{to:?}: expected {expected:?} in {got:?}"
        );
    }
    // At the limits, all is well.
    let header = format!(
        "  name: promo\n  header: {{ text: \"{}\" }}\n",
        "h".repeat(60)
    );
    assert!(check(&BASE.replacen("  name: promo\n", &header, 1)).is_ok());
    let ten: String = (0..10)
        .map(|i| format!("    - {{ payload: b{i} }}\n"))
        .collect();
    let ten = format!("  name: promo\n  buttons:\n{ten}");
    assert!(check(&BASE.replacen("  name: promo\n", &ten, 1)).is_ok());
    let leap = "schedule:\n  cron: \"0 10 29 2 *\"\n  timezone: Europe/Moscow\n";
    let leap = BASE.replacen("schedule:\n  at: 2026-12-01T10:00\n", leap, 1);
    assert!(check(&leap).is_ok());
}

/// Issue 10 item 14: `hours: {}`, a window of holidays only, `send_window: {}` all meant 24/7.
/// A window needs open hours; only transactional and service campaigns may leave it out, and
/// are then always open.
#[test]
fn a_send_window_needs_open_hours_and_marketing_needs_a_window() {
    let window = "send_window:\n  hours: { mon-fri: \"09:00-20:00\" }\n";
    let cases = [
        (
            "send_window:\n  hours: {}\n",
            "c.yaml:13:10: send_window.hours is empty",
        ),
        (
            "send_window:\n  holidays: [ru]\n",
            "c.yaml:13:3: the send window has no open hours",
        ),
        (
            "send_window: {}\n",
            "c.yaml:12:14: the send window has no open hours",
        ),
        ("send_window:\n", "c.yaml:12:1: send_window is empty"),
        (
            "send_window:\n  unknown_timezone: Europe/Moscow\n",
            "c.yaml:13:3: the send window has no open hours",
        ),
        (
            "send_window:\n  hours: { mon-fri: [] }\n",
            "c.yaml:13:3: the send window is never open",
        ),
        ("", "c.yaml:1:1: the campaign is missing `send_window`"),
    ];
    for (to, expected) in cases {
        let got = messages(&BASE.replacen(window, to, 1));
        assert!(
            got.iter().any(|m| m.starts_with(expected)),
            "{to:?}: expected {expected:?} in {got:?}"
        );
        assert_eq!(got.len(), 1, "one mistake, one message: {got:?}");
    }
    let marketing = check(BASE).unwrap();
    assert!(!marketing.always_open);
    for purpose in ["transactional", "service"] {
        let text = BASE
            .replacen("purpose: marketing", &format!("purpose: {purpose}"), 1)
            .replacen(window, "", 1);
        let campaign = check(&text).unwrap();
        assert!(campaign.always_open, "{purpose}");
        // And with a window given, the window holds.
        let text = BASE.replacen("purpose: marketing", &format!("purpose: {purpose}"), 1);
        assert!(!check(&text).unwrap().always_open);
    }
}

/// Issue 10 item 9: an audience that is not a regular file (it would block or never end) is
/// named as such, not as missing.
#[test]
fn an_audience_that_is_not_a_regular_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("folder.csv")).unwrap();
    let text = BASE.replace("source: people.csv", "source: folder.csv");
    let got = herald_campaign::parse("c.yaml", dir.path(), &text, now())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        got.0[0].to_string(),
        "c.yaml:4:11: audience file `folder.csv` is not a regular file (a directory): audiences \
         are read from regular files only"
    );
}

/// `catch_up` and `overlap` are about a recurring schedule's runs: only with `cron`, and only
/// their listed values.
#[test]
fn catch_up_and_overlap_go_with_cron_and_take_listed_values() {
    let at = "schedule:\n  at: 2026-12-01T10:00\n";
    let cron = "schedule:\n  cron: \"0 10 * * MON\"\n  timezone: Europe/Moscow\n";
    let cases = [
        (
            format!("{cron}  catch_up: bogus\n"),
            "c.yaml:13:13: invalid schedule.catch_up `bogus`: expected one of latest, none",
        ),
        (
            format!("{cron}  overlap: never\n"),
            "c.yaml:13:12: invalid schedule.overlap `never`: expected one of skip, allow",
        ),
        (
            format!("{cron}  overlap: skp\n"),
            "c.yaml:13:12: invalid schedule.overlap `skp`: expected one of skip, allow; did you mean `skip`?",
        ),
        (
            format!("{cron}  catch_up: [latest]\n"),
            "c.yaml:13:13: schedule.catch_up must be text",
        ),
        (
            format!("{at}  catch_up: latest\n"),
            "c.yaml:12:13: `catch_up` goes with `cron`: a one-off `at` schedule has a single run",
        ),
        (
            format!("{at}  overlap: allow\n"),
            "c.yaml:12:12: `overlap` goes with `cron`: a one-off `at` schedule has a single run",
        ),
        (
            format!("{at}  catch_up: bogus\n"),
            "c.yaml:12:13: `catch_up` goes with `cron`",
        ),
    ];
    for (to, expected) in cases {
        let got = messages(&BASE.replacen(at, &to, 1));
        assert_eq!(got.len(), 1, "{to:?}: {got:?}");
        assert!(
            got[0].starts_with(expected),
            "{to:?}: expected {expected:?} in {got:?}"
        );
    }
    let ok = check(&BASE.replacen(
        at,
        &format!("{cron}  catch_up: none\n  overlap: allow\n"),
        1,
    ))
    .unwrap();
    assert_eq!(ok.schedule.catch_up, herald_campaign::CatchUp::None);
    assert_eq!(ok.schedule.overlap, herald_campaign::Overlap::Allow);
    let defaults = check(BASE).unwrap();
    assert_eq!(defaults.schedule.catch_up, herald_campaign::CatchUp::Latest);
    assert_eq!(defaults.schedule.overlap, herald_campaign::Overlap::Skip);
}
