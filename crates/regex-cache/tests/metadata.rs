//! The patterns `phonenumber` hands to this crate: every one of the bundled metadata compiles,
//! and libphonenumber's own example numbers of every region still parse and validate through it.

use phonenumber::metadata::DATABASE;
use regex_cache::{CachedRegex, RegexBuilder};

/// Every pattern of the metadata `phonenumber` ships compiles, so the never-matching fallback
/// of `CachedRegex` is dead code with Herald's data.
#[test]
fn every_pattern_of_the_bundled_metadata_compiles() {
    let mut compiled = 0;
    let mut check = |regex: &CachedRegex| {
        assert!(
            RegexBuilder::new(regex.as_str())
                .ignore_whitespace(true)
                .build()
                .is_ok(),
            "{}",
            regex.as_str()
        );
        compiled += 1;
    };
    for meta in DATABASE.iter() {
        let descriptors = meta.descriptors();
        let kinds = [
            Some(descriptors.general()),
            descriptors.fixed_line(),
            descriptors.mobile(),
            descriptors.toll_free(),
            descriptors.premium_rate(),
            descriptors.shared_cost(),
            descriptors.personal_number(),
            descriptors.voip(),
            descriptors.pager(),
            descriptors.uan(),
            descriptors.emergency(),
            descriptors.voicemail(),
            descriptors.short_code(),
            descriptors.standard_rate(),
            descriptors.carrier(),
            descriptors.no_international(),
        ];
        for descriptor in kinds.into_iter().flatten() {
            check(descriptor.national_number());
        }
        for regex in [
            meta.international_prefix(),
            meta.national_prefix_for_parsing(),
            meta.leading_digits(),
        ]
        .into_iter()
        .flatten()
        {
            check(regex);
        }
        for format in meta.formats().iter().chain(meta.international_formats()) {
            check(format.pattern());
            format.leading_digits().iter().for_each(&mut check);
        }
    }
    assert!(compiled > 4_000, "only {compiled} patterns seen");
}

/// The example mobile and fixed-line numbers of every region, interleaved across regions (the
/// order that made the old shared LRU recompile on every number), parse back to the same
/// national number and validate, from two threads at once.
#[test]
fn example_numbers_of_every_region_validate_from_two_threads() {
    let mut examples = Vec::new();
    for meta in DATABASE.iter() {
        let descriptors = meta.descriptors();
        for descriptor in [descriptors.mobile(), descriptors.fixed_line()]
            .into_iter()
            .flatten()
        {
            if let Some(example) = descriptor.example() {
                examples.push((meta.country_code(), example.to_owned()));
            }
        }
    }
    assert!(examples.len() > 400, "only {} examples", examples.len());
    let check = |examples: &[(u16, String)]| {
        for (code, national) in examples {
            let input = format!("+{code}{national}");
            let number =
                phonenumber::parse(None, &input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert!(phonenumber::is_valid(&number), "{input} is not valid");
            assert_eq!(number.national().to_string(), *national, "{input}");
        }
    };
    let (first, second) = examples.split_at(examples.len() / 2);
    std::thread::scope(|scope| {
        scope.spawn(|| check(first));
        scope.spawn(|| check(second));
    });
}
