//! The polled campaign directory, driven by calling `scan` on real temporary directories.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use herald_campaign::dir::{CampaignDir, DirError, DirEvent, Loaded, MAX_FILES};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// A valid marketing campaign (as in tests/validate.rs); its audience is `people.csv` beside it.
const CAMPAIGN: &str = r#"id: promo
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

fn campaign(id: &str) -> String {
    CAMPAIGN.replacen("id: promo", &format!("id: {id}"), 1)
}

/// The instant campaigns are validated at.
fn now() -> DateTime<Utc> {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

/// A directory with the audience in it, and its model.
fn setup() -> (TempDir, CampaignDir) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("people.csv"), "phone\n+79161234567\n").unwrap();
    let campaigns = CampaignDir::new(dir.path());
    (dir, campaigns)
}

fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    fs::write(&path, text).unwrap();
    path
}

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A one-line summary per event: `loaded NAME ID replaced=..`, `invalid NAME kept=..`,
/// `removed NAME ID`.
fn summary(events: &[DirEvent]) -> Vec<String> {
    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_owned();
    events
        .iter()
        .map(|e| match e {
            DirEvent::Loaded { loaded, replaced } => format!(
                "loaded {} {} replaced={}",
                name(&loaded.path),
                loaded.campaign.id,
                replaced.is_some()
            ),
            DirEvent::Invalid { path, kept, .. } => {
                format!(
                    "invalid {} kept={}",
                    name(path),
                    kept.as_deref().unwrap_or("-")
                )
            }
            DirEvent::Removed { path, campaign } => {
                format!(
                    "removed {} {}",
                    name(path),
                    campaign.as_deref().unwrap_or("-")
                )
            }
        })
        .collect()
}

/// `(file name, campaign id, hash)` of what is in effect.
fn current(campaigns: &CampaignDir) -> Vec<(String, String, String)> {
    campaigns
        .current()
        .into_iter()
        .map(|l: &Loaded| {
            (
                l.path.file_name().unwrap().to_str().unwrap().to_owned(),
                l.campaign.id.to_string(),
                l.hash.clone(),
            )
        })
        .collect()
}

fn diagnostics(event: &DirEvent) -> &str {
    match event {
        DirEvent::Invalid { diagnostics, .. } => diagnostics,
        other => panic!("expected an Invalid event, got {other:?}"),
    }
}

#[test]
fn a_new_file_is_loaded_and_an_unchanged_rescan_reports_nothing() {
    let (dir, mut campaigns) = setup();
    assert_eq!(campaigns.root(), dir.path());
    assert!(campaigns.scan(now()).unwrap().is_empty());
    let path = write(&dir, "promo.yaml", CAMPAIGN);
    let events = campaigns.scan(now()).unwrap();
    assert_eq!(summary(&events), ["loaded promo.yaml promo replaced=false"]);
    let DirEvent::Loaded { loaded, .. } = &events[0] else {
        unreachable!()
    };
    assert_eq!(loaded.path, path);
    assert_eq!(loaded.text, CAMPAIGN);
    assert_eq!(loaded.hash, sha256(CAMPAIGN));
    // The audience resolves against the campaign's directory.
    assert_eq!(
        loaded.campaign.audience.source,
        dir.path().join("people.csv")
    );
    assert!(campaigns.scan(now()).unwrap().is_empty());
    assert!(campaigns.scan(now()).unwrap().is_empty());
    assert_eq!(
        current(&campaigns),
        [("promo.yaml".into(), "promo".into(), sha256(CAMPAIGN))]
    );
    assert!(campaigns.problems().is_empty());
}

#[test]
fn edits_replace_invalid_edits_keep_the_old_version_and_fixes_take_effect() {
    let (dir, mut campaigns) = setup();
    let path = write(&dir, "promo.yaml", CAMPAIGN);
    campaigns.scan(now()).unwrap();

    // A valid edit replaces the version in effect.
    let v2 = CAMPAIGN.replace("name: promo", "name: promo_v2");
    write(&dir, "promo.yaml", &v2);
    let events = campaigns.scan(now()).unwrap();
    assert_eq!(summary(&events), ["loaded promo.yaml promo replaced=true"]);
    let DirEvent::Loaded { loaded, replaced } = &events[0] else {
        unreachable!()
    };
    assert_eq!(replaced.as_deref(), Some(sha256(CAMPAIGN).as_str()));
    assert_eq!(loaded.campaign.template.name, "promo_v2");

    // An invalid edit is reported as `herald validate` reports it; v2 stays in effect.
    let broken = v2.replace("purpose: marketing", "purpose: marketting");
    write(&dir, "promo.yaml", &broken);
    let events = campaigns.scan(now()).unwrap();
    assert_eq!(summary(&events), ["invalid promo.yaml kept=promo"]);
    let expected = herald_campaign::load(&path, now()).unwrap_err().to_string();
    assert_eq!(diagnostics(&events[0]), expected);
    assert_eq!(
        expected,
        format!(
            "{}:2:10: invalid purpose `marketting`: did you mean `marketing`?",
            path.display()
        )
    );
    assert_eq!(current(&campaigns)[0].2, sha256(&v2));
    assert_eq!(campaigns.problems(), [(path.as_path(), expected.as_str())]);
    // Reported once per distinct invalid content.
    assert!(campaigns.scan(now()).unwrap().is_empty());
    let broken_again = broken.replace("  at: 2026-12-01T10:00", "  at: tomorrow");
    write(&dir, "promo.yaml", &broken_again);
    let events = campaigns.scan(now()).unwrap();
    assert_eq!(summary(&events), ["invalid promo.yaml kept=promo"]);
    assert!(diagnostics(&events[0]).contains(":11:7: "), "{events:?}");
    assert_eq!(current(&campaigns)[0].2, sha256(&v2));

    // A fix that differs from the version in effect is loaded, and the problem is gone.
    let v3 = v2.replace("name: promo_v2", "name: promo_v3");
    write(&dir, "promo.yaml", &v3);
    let events = campaigns.scan(now()).unwrap();
    assert_eq!(summary(&events), ["loaded promo.yaml promo replaced=true"]);
    assert!(campaigns.problems().is_empty());
    assert_eq!(current(&campaigns)[0].2, sha256(&v3));

    // A revert to the version in effect only clears the problem: no event.
    write(&dir, "promo.yaml", "id: [");
    assert_eq!(
        summary(&campaigns.scan(now()).unwrap()),
        ["invalid promo.yaml kept=promo"]
    );
    assert_eq!(campaigns.problems().len(), 1);
    write(&dir, "promo.yaml", &v3);
    assert!(campaigns.scan(now()).unwrap().is_empty());
    assert!(campaigns.problems().is_empty());
    assert_eq!(current(&campaigns)[0].2, sha256(&v3));
}

#[test]
fn an_invalid_new_file_is_in_effect_nowhere_until_fixed() {
    let (dir, mut campaigns) = setup();
    let path = write(
        &dir,
        "promo.yaml",
        &CAMPAIGN.replace("id: promo", "id: Bad Id"),
    );
    let events = campaigns.scan(now()).unwrap();
    assert_eq!(summary(&events), ["invalid promo.yaml kept=-"]);
    assert!(diagnostics(&events[0]).starts_with(&format!("{}:1:5: ", path.display())));
    assert!(campaigns.current().is_empty());
    write(&dir, "promo.yaml", CAMPAIGN);
    assert_eq!(
        summary(&campaigns.scan(now()).unwrap()),
        ["loaded promo.yaml promo replaced=false"]
    );
    assert!(campaigns.problems().is_empty());
}

#[test]
fn a_removed_file_stops() {
    let (dir, mut campaigns) = setup();
    let valid = write(&dir, "a.yaml", &campaign("a"));
    let invalid = write(&dir, "b.yaml", "id: b\n");
    assert_eq!(
        summary(&campaigns.scan(now()).unwrap()),
        ["invalid b.yaml kept=-", "loaded a.yaml a replaced=false"]
    );
    fs::remove_file(&valid).unwrap();
    fs::remove_file(&invalid).unwrap();
    assert_eq!(
        summary(&campaigns.scan(now()).unwrap()),
        ["removed a.yaml a", "removed b.yaml -"]
    );
    assert!(campaigns.current().is_empty());
    assert!(campaigns.problems().is_empty());
    assert!(campaigns.scan(now()).unwrap().is_empty());
}

#[test]
fn a_changed_id_replaces_the_old_one() {
    let (dir, mut campaigns) = setup();
    write(&dir, "promo.yaml", CAMPAIGN);
    campaigns.scan(now()).unwrap();
    write(&dir, "promo.yaml", &campaign("promo-2"));
    let events = campaigns.scan(now()).unwrap();
    assert_eq!(
        summary(&events),
        ["loaded promo.yaml promo-2 replaced=true"]
    );
    let ids: Vec<String> = current(&campaigns).into_iter().map(|c| c.1).collect();
    assert_eq!(ids, ["promo-2"]);
}

#[test]
fn a_duplicate_id_is_refused_in_the_later_file_until_the_first_is_gone() {
    let (dir, mut campaigns) = setup();
    let first = write(&dir, "a.yaml", CAMPAIGN);
    let second = write(&dir, "b.yaml", CAMPAIGN);
    let events = campaigns.scan(now()).unwrap();
    assert_eq!(
        summary(&events),
        [
            "invalid b.yaml kept=-",
            "loaded a.yaml promo replaced=false"
        ]
    );
    assert_eq!(
        diagnostics(&events[0]),
        format!(
            "{}:1:5: campaign id `promo` is already used by {}",
            second.display(),
            first.display()
        )
    );
    assert_eq!(current(&campaigns)[0].0, "a.yaml");
    assert_eq!(campaigns.problems().len(), 1);
    assert!(campaigns.scan(now()).unwrap().is_empty());

    fs::remove_file(&first).unwrap();
    assert_eq!(
        summary(&campaigns.scan(now()).unwrap()),
        ["removed a.yaml promo", "loaded b.yaml promo replaced=false"]
    );
    assert_eq!(current(&campaigns)[0].0, "b.yaml");
    assert!(campaigns.problems().is_empty());

    // A new file earlier in name order takes the id; the later one stops, before the load.
    write(&dir, "0.yaml", CAMPAIGN);
    assert_eq!(
        summary(&campaigns.scan(now()).unwrap()),
        [
            "invalid b.yaml kept=-",
            "loaded 0.yaml promo replaced=false"
        ]
    );
    assert_eq!(current(&campaigns).len(), 1);
    assert_eq!(current(&campaigns)[0].0, "0.yaml");
}

#[test]
fn an_edit_to_a_taken_id_keeps_the_previous_version() {
    let (dir, mut campaigns) = setup();
    write(&dir, "a.yaml", &campaign("a"));
    let second = write(&dir, "b.yaml", &campaign("b"));
    campaigns.scan(now()).unwrap();
    write(&dir, "b.yaml", &campaign("a"));
    let events = campaigns.scan(now()).unwrap();
    assert_eq!(summary(&events), ["invalid b.yaml kept=b"]);
    assert!(diagnostics(&events[0]).starts_with(&format!("{}:1:5: ", second.display())));
    let ids: Vec<String> = current(&campaigns).into_iter().map(|c| c.1).collect();
    assert_eq!(ids, ["a", "b"]);
}

#[test]
fn too_many_files_fail_the_scan_and_change_nothing() {
    let (dir, mut campaigns) = setup();
    write(&dir, "a.yaml", CAMPAIGN);
    campaigns.scan(now()).unwrap();
    let extra: Vec<PathBuf> = (0..MAX_FILES)
        .map(|i| write(&dir, &format!("x{i:04}.yml"), "id: [\n"))
        .collect();
    // One over the limit, with a.yaml changed too: the scan reads none of them.
    write(&dir, "a.yaml", &campaign("changed"));
    let error = campaigns.scan(now()).unwrap_err();
    assert!(matches!(error, DirError::TooManyFiles { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "campaign directory {}: holds more than {MAX_FILES} campaign files",
            dir.path().display()
        )
    );
    assert_eq!(current(&campaigns)[0].1, "promo");
    assert!(campaigns.problems().is_empty());

    // Down to the limit, the scan goes on from the state before the failed one.
    fs::remove_file(&extra[0]).unwrap();
    let events = campaigns.scan(now()).unwrap();
    assert_eq!(events.len(), MAX_FILES);
    assert_eq!(
        summary(&events).last().unwrap(),
        "loaded a.yaml changed replaced=true"
    );
    assert_eq!(campaigns.problems().len(), MAX_FILES - 1);
}

#[test]
fn a_missing_or_non_directory_root_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let error = CampaignDir::new(&missing).scan(now()).unwrap_err();
    assert!(matches!(error, DirError::Missing { .. }));
    assert_eq!(
        error.to_string(),
        format!("campaign directory {}: does not exist", missing.display())
    );
    let file = write(&dir, "file.yaml", CAMPAIGN);
    let error = CampaignDir::new(&file).scan(now()).unwrap_err();
    assert!(matches!(error, DirError::NotDirectory { .. }));
    assert!(error.to_string().contains(&file.display().to_string()));
}

#[test]
fn only_visible_yaml_files_directly_in_the_directory_are_read() {
    let (dir, mut campaigns) = setup();
    write(&dir, "a.yaml", &campaign("a"));
    write(&dir, "b.yml", &campaign("b"));
    for ignored in [
        "notes.txt",
        "c.json",
        ".hidden.yaml",
        ".a.yaml.swp",
        "a.yaml~",
        "#a.yaml#",
        "a.yaml.bak",
        "A.YAML",
    ] {
        write(&dir, ignored, &campaign("ignored"));
    }
    fs::create_dir(dir.path().join("sub.yaml")).unwrap();
    fs::create_dir(dir.path().join("nested")).unwrap();
    write(&dir, "nested/n.yaml", &campaign("nested"));
    let events = campaigns.scan(now()).unwrap();
    assert_eq!(
        summary(&events),
        [
            "loaded a.yaml a replaced=false",
            "loaded b.yml b replaced=false"
        ]
    );
    assert!(campaigns.problems().is_empty());
}

#[cfg(unix)]
#[test]
fn unreadable_files_are_invalid_at_their_start_and_keep_the_last_valid_version() {
    let (dir, mut campaigns) = setup();
    let big = write(&dir, "big.yaml", CAMPAIGN);
    let text = dir.path().join("latin1.yaml");
    fs::write(&text, b"id: caf\xe9\n").unwrap();
    let dangling = dir.path().join("dangling.yaml");
    std::os::unix::fs::symlink(dir.path().join("nothing-here"), &dangling).unwrap();
    assert_eq!(
        summary(&campaigns.scan(now()).unwrap()),
        [
            "invalid dangling.yaml kept=-",
            "invalid latin1.yaml kept=-",
            "loaded big.yaml promo replaced=false"
        ]
    );
    fs::write(&big, vec![b'#'; 1024 * 1024 + 1]).unwrap();
    let events = campaigns.scan(now()).unwrap();
    assert_eq!(summary(&events), ["invalid big.yaml kept=promo"]);
    assert_eq!(
        diagnostics(&events[0]),
        format!(
            "{}:1:1: larger than the limit of 1048576 bytes",
            big.display()
        )
    );
    assert!(campaigns.scan(now()).unwrap().is_empty());
    let problems = campaigns.problems();
    assert_eq!(problems.len(), 3);
    assert_eq!(problems[1].0, dangling);
    assert!(
        problems[1]
            .1
            .starts_with(&format!("{}:1:1: cannot read: ", dangling.display())),
        "{problems:?}"
    );
    assert_eq!(
        problems[2].1,
        format!(
            "{}:1:1: not UTF-8 text (invalid byte at offset 7)",
            text.display()
        )
    );
    assert_eq!(current(&campaigns)[0].2, sha256(CAMPAIGN));
}

#[cfg(unix)]
#[test]
fn a_configmap_style_symlink_swap_is_an_edit() {
    use std::os::unix::fs::symlink;
    let (dir, mut campaigns) = setup();
    let root = dir.path();
    fs::create_dir(root.join("..v1")).unwrap();
    fs::write(root.join("..v1/promo.yaml"), CAMPAIGN).unwrap();
    symlink("..v1", root.join("..data")).unwrap();
    symlink("..data/promo.yaml", root.join("promo.yaml")).unwrap();
    assert_eq!(
        summary(&campaigns.scan(now()).unwrap()),
        ["loaded promo.yaml promo replaced=false"]
    );
    // Kubernetes writes the new version beside the old and renames a new `..data` over it.
    let v2 = CAMPAIGN.replace("name: promo", "name: promo_v2");
    fs::create_dir(root.join("..v2")).unwrap();
    fs::write(root.join("..v2/promo.yaml"), &v2).unwrap();
    symlink("..v2", root.join("..data_tmp")).unwrap();
    fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    assert_eq!(
        summary(&campaigns.scan(now()).unwrap()),
        ["loaded promo.yaml promo replaced=true"]
    );
    assert_eq!(current(&campaigns)[0].2, sha256(&v2));
}

#[test]
fn a_refused_version_gives_way_to_the_previous_one_until_the_file_changes() {
    let (dir, mut campaigns) = setup();
    let path = write(&dir, "promo.yaml", CAMPAIGN);
    campaigns.scan(now()).unwrap();
    let v2 = CAMPAIGN.replace("purpose: marketing", "sender: nobody\npurpose: marketing");
    write(&dir, "promo.yaml", &v2);
    assert_eq!(
        summary(&campaigns.scan(now()).unwrap()),
        ["loaded promo.yaml promo replaced=true"]
    );
    let refusal = format!("{}:2:9: unknown sender `nobody`", path.display());
    campaigns.refuse(&path, refusal.clone());
    assert_eq!(current(&campaigns)[0].2, sha256(CAMPAIGN));
    assert_eq!(campaigns.problems(), [(path.as_path(), refusal.as_str())]);
    // The refusal holds while the content is the same, without a new event.
    assert!(campaigns.scan(now()).unwrap().is_empty());
    assert_eq!(current(&campaigns)[0].2, sha256(CAMPAIGN));
    assert_eq!(campaigns.problems().len(), 1);

    // A change is validated again and reported.
    let v3 = v2.replace("sender: nobody", "sender: main");
    write(&dir, "promo.yaml", &v3);
    let events = campaigns.scan(now()).unwrap();
    assert_eq!(summary(&events), ["loaded promo.yaml promo replaced=true"]);
    let DirEvent::Loaded { replaced, .. } = &events[0] else {
        unreachable!()
    };
    assert_eq!(replaced.as_deref(), Some(sha256(CAMPAIGN).as_str()));
    assert!(campaigns.problems().is_empty());

    // A refused new file has nothing to fall back to; an unknown path changes nothing.
    let other = write(&dir, "other.yaml", &campaign("other"));
    campaigns.scan(now()).unwrap();
    campaigns.refuse(&other, "refused".into());
    campaigns.refuse(&dir.path().join("unknown.yaml"), "refused".into());
    let ids: Vec<String> = current(&campaigns).into_iter().map(|c| c.1).collect();
    assert_eq!(ids, ["promo"]);
    assert_eq!(campaigns.problems(), [(other.as_path(), "refused")]);
    assert!(campaigns.scan(now()).unwrap().is_empty());
    // Any change of the content re-validates it.
    write(
        &dir,
        "other.yaml",
        &format!("{}# edited\n", campaign("other")),
    );
    assert_eq!(
        summary(&campaigns.scan(now()).unwrap()),
        ["loaded other.yaml other replaced=false"]
    );
}

#[test]
fn a_kept_version_whose_id_is_taken_by_an_earlier_file_stops_and_is_reported_again() {
    let (dir, mut campaigns) = setup();
    write(&dir, "b.yaml", CAMPAIGN);
    campaigns.scan(now()).unwrap();
    write(&dir, "b.yaml", "id: [\n");
    assert_eq!(
        summary(&campaigns.scan(now()).unwrap()),
        ["invalid b.yaml kept=promo"]
    );
    // Same invalid content, but what it keeps changed: reported again, keeping nothing.
    write(&dir, "a.yaml", CAMPAIGN);
    assert_eq!(
        summary(&campaigns.scan(now()).unwrap()),
        [
            "invalid b.yaml kept=-",
            "loaded a.yaml promo replaced=false"
        ]
    );
    assert_eq!(current(&campaigns)[0].0, "a.yaml");
    assert_eq!(current(&campaigns).len(), 1);
    assert!(campaigns.scan(now()).unwrap().is_empty());
    // Its old version does not come back when the id is free again: only a valid content does.
    fs::remove_file(dir.path().join("a.yaml")).unwrap();
    assert_eq!(
        summary(&campaigns.scan(now()).unwrap()),
        ["removed a.yaml promo"]
    );
    assert!(campaigns.current().is_empty());
}
