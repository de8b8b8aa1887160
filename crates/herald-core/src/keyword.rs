//! Consent keywords: a whole inbound message that says STOP (or START) becomes a consent event
//! (design §2: a STOP-style keyword is opt_out(all) on the channel, a START-style keyword
//! opt_in(all)).
//!
//! # Matching
//! The *whole* message counts, not a word in it ("please don't stop" is not a STOP): it is
//! trimmed at both ends of every character that is not alphanumeric (whitespace, punctuation,
//! and symbols such as emoji: `"  СТОП! 🛑"` is `СТОП`), then compared with each keyword under
//! case folding. Folding is `to_uppercase` then `to_lowercase` per string, which agrees with
//! Unicode full case folding for these lists (`ß`/`SS`, final `ς`/`σ`, Cyrillic, accented
//! Latin); it differs only in locale-specific folds (Turkish dotless `ı`), which no default
//! keyword holds. Before folding, both the message and the keywords are put in NFKC (so a
//! decomposed `E` + combining circumflex is `Ê`, and fullwidth `ＳＴＯＰ` is `STOP`) and stripped
//! of invisible characters (zero-width spaces and joiners, the soft hyphen): a STOP that is
//! missed fails open, so matching errs towards recognising one.
//!
//! A word in both lists is refused at configuration time ([`KeywordError::InBoth`]): the same
//! message cannot both grant and withdraw.

use std::fmt;

use crate::consent::ConsentKind;

/// The default opt-out keywords.
pub const DEFAULT_OPT_OUT: [&str; 8] = [
    "STOP",
    "UNSUBSCRIBE",
    "СТОП",
    "ОТПИСАТЬСЯ",
    "BAJA",
    "ARRET",
    "ARRÊT",
    "STOPP",
];

/// The default opt-in keywords.
pub const DEFAULT_OPT_IN: [&str; 3] = ["START", "СТАРТ", "ПОДПИСАТЬСЯ"];

/// The longest keyword accepted, in characters.
pub const MAX_KEYWORD_CHARS: usize = 64;
/// At most this many keywords per list.
pub const MAX_KEYWORDS: usize = 100;

/// A keyword list that cannot work; names the list and the word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeywordError {
    /// Nothing left after trimming, or longer than [`MAX_KEYWORD_CHARS`].
    #[error("{list}: keyword {word:?} is empty after trimming or longer than 64 characters")]
    Invalid {
        /// `opt_out` or `opt_in`.
        list: &'static str,
        /// The word as configured.
        word: String,
    },
    /// A list longer than [`MAX_KEYWORDS`].
    #[error("{list}: more than 100 keywords")]
    TooMany {
        /// `opt_out` or `opt_in`.
        list: &'static str,
    },
    /// The same word (after folding) in both lists.
    #[error("keyword {word:?} is in both opt_out and opt_in")]
    InBoth {
        /// The word as configured in `opt_in`.
        word: String,
    },
}

/// A message that is a keyword: what it does and the keyword as configured (the consent event's
/// source is `keyword:<word>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeywordMatch {
    /// Opt-out or opt-in.
    pub kind: ConsentKind,
    /// The configured keyword it matched.
    pub word: String,
}

/// The configured keyword lists, folded once.
#[derive(Clone, PartialEq, Eq)]
pub struct Keywords {
    /// (folded, as configured), per kind.
    words: Vec<(ConsentKind, String, String)>,
}

impl fmt::Debug for Keywords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.words.iter().map(|(kind, _, word)| (kind, word)))
            .finish()
    }
}

impl Default for Keywords {
    fn default() -> Self {
        let owned = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
        // Invariant: the defaults are valid and disjoint (tested).
        Keywords::new(&owned(&DEFAULT_OPT_OUT), &owned(&DEFAULT_OPT_IN))
            .expect("the default keywords are valid")
    }
}

impl Keywords {
    /// Checks and folds both lists.
    ///
    /// # Errors
    /// A word empty after trimming or too long, a list too long, a word in both lists.
    pub fn new(opt_out: &[String], opt_in: &[String]) -> Result<Keywords, KeywordError> {
        let mut words = Vec::new();
        for (list, kind, given) in [
            ("opt_out", ConsentKind::OptOut, opt_out),
            ("opt_in", ConsentKind::OptIn, opt_in),
        ] {
            if given.len() > MAX_KEYWORDS {
                return Err(KeywordError::TooMany { list });
            }
            for word in given {
                let folded = normalize(word);
                if folded.is_empty() || word.chars().count() > MAX_KEYWORD_CHARS {
                    return Err(KeywordError::Invalid {
                        list,
                        word: word.clone(),
                    });
                }
                if kind == ConsentKind::OptIn
                    && words
                        .iter()
                        .any(|(k, f, _)| *k == ConsentKind::OptOut && *f == folded)
                {
                    return Err(KeywordError::InBoth { word: word.clone() });
                }
                words.push((kind, folded, word.clone()));
            }
        }
        Ok(Keywords { words })
    }

    /// The keyword `text` is, if the whole message is one (module docs).
    pub fn classify(&self, text: &str) -> Option<KeywordMatch> {
        let trimmed = trim(text);
        // A message longer than any keyword cannot be one: skip folding a long text.
        if trimmed.is_empty() || trimmed.chars().count() > MAX_KEYWORD_CHARS * 3 {
            return None;
        }
        let folded = fold(trimmed);
        self.words
            .iter()
            .find(|(_, f, _)| *f == folded)
            .map(|(kind, _, word)| KeywordMatch {
                kind: *kind,
                word: word.clone(),
            })
    }
}

fn trim(text: &str) -> &str {
    text.trim_matches(|c: char| !c.is_alphanumeric())
}

fn fold(text: &str) -> String {
    let visible: String = text.chars().filter(|c| !is_invisible(*c)).collect();
    let normalized = icu_normalizer::ComposingNormalizerBorrowed::new_nfkc().normalize(&visible);
    normalized.to_uppercase().to_lowercase()
}

/// Characters that change nothing a reader sees and that keyboards and messaging apps insert
/// inside words: the soft hyphen, zero-width spaces and joiners, directional marks, the word
/// joiner and invisible operators, the byte order mark. Dropped before matching, so
/// `ST\u{200B}OP` is `STOP` (a missed STOP fails open).
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{034F}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
    )
}

fn normalize(text: &str) -> String {
    fold(trim(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matched(text: &str) -> Option<(ConsentKind, String)> {
        Keywords::default().classify(text).map(|m| (m.kind, m.word))
    }

    #[test]
    fn whole_message_trimmed_and_case_folded() {
        let out = |w: &str| Some((ConsentKind::OptOut, w.to_owned()));
        let inn = |w: &str| Some((ConsentKind::OptIn, w.to_owned()));
        assert_eq!(matched("stop"), out("STOP"));
        assert_eq!(matched("  Stop.\n"), out("STOP"));
        assert_eq!(matched("¡¡BAJA!!"), out("BAJA"));
        assert_eq!(matched("стоп"), out("СТОП"));
        assert_eq!(matched(" СтОп! 🛑"), out("СТОП"));
        assert_eq!(matched("«отписаться»"), out("ОТПИСАТЬСЯ"));
        assert_eq!(matched("arrêt"), out("ARRÊT"));
        assert_eq!(matched("Arret"), out("ARRET"));
        assert_eq!(matched("stopp"), out("STOPP"));
        assert_eq!(matched("\tstart\t"), inn("START"));
        assert_eq!(matched("старт"), inn("СТАРТ"));
        assert_eq!(matched("Подписаться!"), inn("ПОДПИСАТЬСЯ"));
    }

    #[test]
    fn a_keyword_inside_a_sentence_is_not_one() {
        for text in [
            "please stop",
            "stop it",
            "don't stop",
            "стоп-кран",
            "",
            "!!!",
            "s t o p",
        ] {
            assert_eq!(matched(text), None, "{text:?}");
        }
    }

    #[test]
    fn folding_covers_sharp_s_and_final_sigma() {
        let k = Keywords::new(&["STRASSE".into(), "ΤΈΛΟΣ".into()], &[]).unwrap();
        assert!(k.classify("straße").is_some());
        assert!(k.classify("τέλος").is_some());
    }

    #[test]
    fn bad_lists_are_refused_by_name() {
        assert_eq!(
            Keywords::new(&["!!".into()], &[]),
            Err(KeywordError::Invalid {
                list: "opt_out",
                word: "!!".into()
            })
        );
        assert_eq!(
            Keywords::new(&["Stop".into()], &["STOP!".into()]),
            Err(KeywordError::InBoth {
                word: "STOP!".into()
            })
        );
        let many: Vec<String> = (0..=MAX_KEYWORDS).map(|n| format!("w{n}")).collect();
        assert_eq!(
            Keywords::new(&[], &many),
            Err(KeywordError::TooMany { list: "opt_in" })
        );
    }
}
