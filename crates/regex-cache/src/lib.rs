//! Herald's replacement for the crates.io `regex-cache` 0.2, patched in for `phonenumber` 0.3
//! (the only user) through `[patch.crates-io]` in the workspace manifest.
//!
//! # Why
//! `phonenumber` compiles every pattern of libphonenumber's metadata through `regex-cache`: one
//! process-wide LRU of 100 compiled regexes behind one `Mutex`, held for the whole search. Parsing
//! and validating one number consults about a dozen of a country's patterns, so:
//! - an audience of more than a handful of countries evicts and recompiles regexes on almost
//!   every number: measured here, 5.5 µs a number for one country and **2,000 µs** (400x) for a
//!   mix of 30, which is half an hour for a million-recipient global campaign;
//! - every phone parse in the process is serialised on that mutex, so reading an audience on
//!   two threads is no faster than on one;
//! - even with one country, hashing the pattern text for the LRU lookup cost a third of a parse.
//!
//! # What instead
//! Each [`CachedRegex`] compiles its pattern the first time it is used and keeps it for the life
//! of the process (`OnceLock`): no lock on the hot path, no eviction, and only the patterns of
//! the countries actually met are ever compiled (compiling all of the metadata up front, as
//! phonenumber's unreleased 0.4 does, was reported to take hundreds of MiB). Identical patterns
//! share one compiled regex, and the lazy DFA's cache is kept small (see `shared`): an audience
//! touching every region costs about 60 MiB more than with the old LRU, one country about
//! nothing. [`RegexCache`] remains only as the type `phonenumber` passes around.
//!
//! The API is the subset of `regex-cache` 0.2 that `phonenumber` 0.3 uses, with the same
//! meaning: a builder that checks the syntax at `build`, and the search methods of
//! [`regex::Regex`]. A test compiles every pattern of the bundled metadata, so the fallback in
//! [`CachedRegex::regex`] is never taken with the data Herald ships.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use regex::{Captures, Match, Replacer};
pub use regex::{Error, Regex, RegexBuilder};

/// Kept for API compatibility: regexes are no longer shared through it, so it holds nothing.
#[derive(Debug, Default)]
pub struct RegexCache {
    _capacity: usize,
}

impl RegexCache {
    /// A cache handle; `capacity` is ignored, nothing is ever evicted.
    pub fn new(capacity: usize) -> Self {
        Self {
            _capacity: capacity,
        }
    }
}

/// Configures a [`CachedRegex`]; only the flags `phonenumber` sets are offered.
#[derive(Clone, Debug)]
pub struct CachedRegexBuilder {
    source: String,
    ignore_whitespace: bool,
}

impl CachedRegexBuilder {
    /// A builder for `source`; the cache argument is accepted and unused.
    pub fn new(_cache: Arc<Mutex<RegexCache>>, source: &str) -> Self {
        Self {
            source: source.to_owned(),
            ignore_whitespace: false,
        }
    }

    /// The `x` flag: whitespace and `#` comments in the pattern are ignored.
    pub fn ignore_whitespace(&mut self, yes: bool) -> &mut Self {
        self.ignore_whitespace = yes;
        self
    }

    /// Checks the pattern's syntax now and leaves the compiling to the first search.
    pub fn build(&self) -> Result<CachedRegex, Error> {
        regex_syntax::ParserBuilder::new()
            .ignore_whitespace(self.ignore_whitespace)
            .build()
            .parse(&self.source)
            .map_err(|e| Error::Syntax(e.to_string()))?;
        Ok(self.build_unchecked())
    }

    /// As [`Self::build`] without the syntax check.
    pub fn build_unchecked(&self) -> CachedRegex {
        CachedRegex {
            inner: Arc::new(Inner {
                source: self.source.clone(),
                ignore_whitespace: self.ignore_whitespace,
                compiled: OnceLock::new(),
            }),
        }
    }
}

/// A pattern compiled on first use; clones share the compiled regex.
#[derive(Clone)]
pub struct CachedRegex {
    inner: Arc<Inner>,
}

struct Inner {
    source: String,
    ignore_whitespace: bool,
    compiled: OnceLock<Arc<Regex>>,
}

impl CachedRegex {
    /// A regex for `source` with default flags, its syntax checked now.
    pub fn new(cache: Arc<Mutex<RegexCache>>, source: &str) -> Result<Self, Error> {
        CachedRegexBuilder::new(cache, source).build()
    }

    /// As [`Self::new`] without the syntax check.
    pub fn new_unchecked(cache: Arc<Mutex<RegexCache>>, source: &str) -> Self {
        CachedRegexBuilder::new(cache, source).build_unchecked()
    }

    /// The compiled regex, compiled (or found among the shared ones) at the first search.
    fn regex(&self) -> &Regex {
        self.inner
            .compiled
            .get_or_init(|| shared(&self.inner.source, self.inner.ignore_whitespace))
    }

    /// As [`Regex::is_match`].
    pub fn is_match(&self, text: &str) -> bool {
        self.regex().is_match(text)
    }

    /// As [`Regex::find`].
    pub fn find<'t>(&self, text: &'t str) -> Option<Match<'t>> {
        self.regex().find(text)
    }

    /// As [`Regex::captures`].
    pub fn captures<'t>(&self, text: &'t str) -> Option<Captures<'t>> {
        self.regex().captures(text)
    }

    /// As [`Regex::captures_len`].
    pub fn captures_len(&self) -> usize {
        self.regex().captures_len()
    }

    /// As [`Regex::shortest_match`].
    pub fn shortest_match(&self, text: &str) -> Option<usize> {
        self.regex().shortest_match(text)
    }

    /// As [`Regex::replace`].
    pub fn replace<'t, R: Replacer>(&self, text: &'t str, rep: R) -> Cow<'t, str> {
        self.regex().replace(text, rep)
    }

    /// As [`Regex::replace_all`].
    pub fn replace_all<'t, R: Replacer>(&self, text: &'t str, rep: R) -> Cow<'t, str> {
        self.regex().replace_all(text, rep)
    }

    /// The pattern as given, without the flags.
    pub fn as_str(&self) -> &str {
        &self.inner.source
    }
}

/// The compiled regex for a pattern, shared by every `CachedRegex` with the same source and
/// flags: libphonenumber's metadata repeats patterns across regions (4,734 patterns, 2,058
/// distinct), and each compiled one costs tens of KiB. The lock is taken once per
/// `CachedRegex`, at its first search, never on the hot path.
///
/// A pattern that passed the syntax check can still exceed the regex crate's size limit; such a
/// pattern matches nothing rather than panicking in the middle of reading an audience (a number
/// it would have accepted is then reported invalid). A test compiles every bundled pattern.
fn shared(source: &str, ignore_whitespace: bool) -> Arc<Regex> {
    /// Compiled regexes by (source, ignore_whitespace).
    type Compiled = HashMap<(String, bool), Arc<Regex>>;
    static COMPILED: OnceLock<Mutex<Compiled>> = OnceLock::new();
    let mut compiled = COMPILED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let key = (source.to_owned(), ignore_whitespace);
    if let Some(regex) = compiled.get(&key) {
        return Arc::clone(regex);
    }
    let regex = RegexBuilder::new(source)
        .ignore_whitespace(ignore_whitespace)
        // The lazy DFA's cache per regex and thread. With the default 2 MiB, parsing every
        // region's example numbers peaked at 160 MiB of RSS (25 MiB with the old LRU, which
        // recompiled instead); with 16 KiB and shared patterns, 86 MiB. These patterns are short
        // digit classes that make few states: parsing measured 10% faster, not slower.
        .dfa_size_limit(DFA_CACHE_BYTES)
        .build()
        .unwrap_or_else(|error| {
            debug_assert!(false, "pattern {source:?} does not compile: {error}");
            never_matches()
        });
    let regex = Arc::new(regex);
    compiled.insert(key, Arc::clone(&regex));
    regex
}

/// See [`shared`].
const DFA_CACHE_BYTES: usize = 16 * 1024;

fn never_matches() -> Regex {
    // An empty character class: valid, and matches no input at all.
    Regex::new("[^\\s\\S]").unwrap_or_else(|_| unreachable!("a constant, valid pattern"))
}

impl fmt::Debug for CachedRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CachedRegex")
            .field(&self.inner.source)
            .finish()
    }
}

impl fmt::Display for CachedRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> Arc<Mutex<RegexCache>> {
        Arc::new(Mutex::new(RegexCache::new(100)))
    }

    #[test]
    fn the_builder_checks_syntax_and_applies_ignore_whitespace() {
        assert!(CachedRegex::new(cache(), "(unclosed").is_err());
        let spaced = CachedRegexBuilder::new(cache(), "9 \\d{2}\n  [1-3]")
            .ignore_whitespace(true)
            .build()
            .unwrap();
        assert!(spaced.is_match("9452"));
        assert_eq!(spaced.find("x9452").map(|m| m.start()), Some(1));
        assert_eq!(spaced.as_str(), "9 \\d{2}\n  [1-3]");
        let literal = CachedRegex::new(cache(), "9 1").unwrap();
        assert!(literal.is_match("9 1") && !literal.is_match("91"));
    }

    #[test]
    fn clones_share_one_compiled_regex() {
        let original = CachedRegex::new(cache(), "(\\d)(\\d)").unwrap();
        let clone = original.clone();
        assert_eq!(clone.captures_len(), 3);
        assert!(std::ptr::eq(original.regex(), clone.regex()));
        let same_source = CachedRegex::new(cache(), "(\\d)(\\d)").unwrap();
        assert!(std::ptr::eq(original.regex(), same_source.regex()));
        assert_eq!(original.replace("12", "$2$1"), "21");
        assert_eq!(original.replace_all("1234", "$2$1"), "2143");
        assert_eq!(original.shortest_match("a12"), Some(3));
    }

    #[test]
    fn never_matches_matches_nothing() {
        let never = never_matches();
        assert!(!never.is_match("") && !never.is_match("123") && !never.is_match("\n"));
    }
}
