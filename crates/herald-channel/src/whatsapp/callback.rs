//! `biz_opaque_callback_data`: the delivery a request is for, carried to Meta and back in every
//! status webhook about the message, so a status can resolve a delivery whose send was never
//! recorded (`unknown`: the worker crashed after Meta accepted the request).
//!
//! # Encoding
//! ```text
//! h1:<byte length of the run id, decimal, no leading zero>:<run id><recipient key>
//! ```
//! Length-prefixed rather than separated: a run id holds `@` and may hold `/` or `:`, and a
//! recipient key may hold almost anything, so no separator is safe. Any fallback that joins the
//! two with a character both may contain can make two deliveries one: a data-loss bug. The
//! `h1:` prefix names the version, so a later encoding can be read beside this one.
//!
//! Meta takes at most [`MAX_CALLBACK_CHARS`] characters. A longer encoding is not truncated
//! (that would name another delivery, or none): the request goes without callback data and
//! its statuses are found by the message id alone.

/// Meta's limit on `biz_opaque_callback_data`, in characters.
pub const MAX_CALLBACK_CHARS: usize = 512;

const VERSION: &str = "h1:";

/// The callback data naming the delivery (`run`, `recipient_key`), or `None` when it would
/// exceed [`MAX_CALLBACK_CHARS`].
///
/// ```
/// # use herald_channel::whatsapp::{callback_data, parse_callback_data};
/// let data = callback_data("bf@2026-11-27T10:00", "cust-17").unwrap();
/// assert_eq!(data, "h1:19:bf@2026-11-27T10:00cust-17");
/// assert_eq!(parse_callback_data(&data), Some(("bf@2026-11-27T10:00", "cust-17")));
/// ```
pub fn callback_data(run: &str, recipient_key: &str) -> Option<String> {
    let data = format!("{VERSION}{}:{run}{recipient_key}", run.len());
    (data.chars().count() <= MAX_CALLBACK_CHARS).then_some(data)
}

/// Reads back what [`callback_data`] wrote: `(run, recipient_key)`, or `None` for anything
/// else (another version, a length that is not canonical or does not fit, an empty part).
pub fn parse_callback_data(data: &str) -> Option<(&str, &str)> {
    let rest = data.strip_prefix(VERSION)?;
    let (length, rest) = rest.split_once(':')?;
    let canonical = !length.is_empty()
        && length.bytes().all(|b| b.is_ascii_digit())
        && !(length.len() > 1 && length.starts_with('0'));
    if !canonical {
        return None;
    }
    let length: usize = length.parse().ok()?;
    if length == 0 || length >= rest.len() || !rest.is_char_boundary(length) {
        return None;
    }
    Some(rest.split_at(length))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn separators_inside_either_part_do_not_move_the_split() {
        let pairs = [
            ("a@1", "b:c"),
            ("a@1:b", "c"),
            ("a@1/b", "c"),
            ("a@1", "/b"),
            ("кампания@2026-11-27T10:00", "phone +79161234567"),
            ("a@1", "x dup line 9"),
        ];
        for (run, key) in pairs {
            let data = callback_data(run, key).unwrap();
            assert_eq!(parse_callback_data(&data), Some((run, key)), "{data}");
        }
        assert_ne!(
            callback_data("a@1", "b:c"),
            callback_data("a@1:b", "c"),
            "a fallback that joins with a separator would make these one"
        );
    }

    #[test]
    fn foreign_or_malformed_data_is_refused() {
        for data in [
            "",
            "h1:",
            "h1:3",
            "h1:3:a@1",
            "h1:03:a@1x",
            "h1:0:x",
            "h1:+3:a@1x",
            "h2:3:a@1x",
            "a@1/x",
            "h1:1:éx",
            "h1:99:a@1x",
        ] {
            assert_eq!(parse_callback_data(data), None, "{data:?}");
        }
    }

    #[test]
    fn too_long_is_left_out_not_truncated() {
        let key = "k".repeat(MAX_CALLBACK_CHARS);
        assert_eq!(callback_data("a@1", &key), None);
    }

    proptest! {
        /// Round trip and, through it, injectivity: two different deliveries never share one
        /// text, because the text reads back to exactly one pair.
        #[test]
        fn every_pair_reads_back_exactly(run in "\\PC{1,40}", key in "\\PC{1,60}") {
            let data = callback_data(&run, &key).expect("short enough");
            prop_assert_eq!(parse_callback_data(&data), Some((run.as_str(), key.as_str())));
        }

        #[test]
        fn distinct_pairs_never_share_a_text(
            a in ("[a@:/ 1]{1,6}", "[a@:/ 1]{1,6}"),
            b in ("[a@:/ 1]{1,6}", "[a@:/ 1]{1,6}"),
        ) {
            let (ea, eb) = (callback_data(&a.0, &a.1), callback_data(&b.0, &b.1));
            prop_assert_eq!(ea == eb, a == b);
        }
    }
}
