//! Hostile review of issue 13: each test here was a finding that failed when written, and is
//! kept as its regression test; the comment says what was wrong and why it matters.

use herald_core::ConsentKind;
use herald_core::keyword::Keywords;

/// FINDING (low-medium, compliance; fails open): an opt-out keyword typed in decomposed
/// Unicode (`E` + U+0302 COMBINING CIRCUMFLEX, as macOS file names, some Android keyboards and
/// copy-pasted text produce) is not `ARRÊT`, and a zero-width character (U+200B, U+2060, soft
/// hyphen U+00AD, which messaging apps and keyboards insert) inside the word hides `STOP`. The
/// issue asks for the whole message compared "case-insensitively (Unicode case folding)"; the
/// module documents the decomposed case as a known gap, but a missed STOP is a message sent to
/// someone who withdrew consent, so matching must normalise (NFC or NFKC) and drop
/// default-ignorable characters before folding. Fullwidth `ＳＴＯＰ` (CJK keyboards) is the same
/// gap under NFKC.
#[test]
fn decomposed_or_zero_width_stop_keywords_are_missed() {
    let keywords = Keywords::default();
    for text in [
        "ARRE\u{302}T",
        "arre\u{302}t",
        "ST\u{200B}OP",
        "ST\u{2060}OP",
        "STO\u{00AD}P",
        "ＳＴＯＰ",
    ] {
        let matched = keywords.classify(text).map(|m| m.kind);
        assert_eq!(
            matched,
            Some(ConsentKind::OptOut),
            "{text:?} is not an opt-out"
        );
    }
}
