//! `campaigns/schema.json` must be what the field tables generate; regenerate with
//! `cargo run -q -- schema > campaigns/schema.json`.

#[test]
fn the_committed_schema_is_current() {
    let committed = include_str!("../../../campaigns/schema.json");
    assert_eq!(
        committed,
        herald_campaign::schema::campaign_schema_text(),
        "run: cargo run -q -- schema > campaigns/schema.json"
    );
}

#[test]
fn examples_reference_the_schema() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../campaigns")).unwrap()
    {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.starts_with("# yaml-language-server: $schema=./schema.json"),
                "{}",
                path.display()
            );
        }
    }
}
