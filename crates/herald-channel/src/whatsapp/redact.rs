//! Taking the access token out of text that comes back (the provider's error message, a
//! library's error), should it be echoed there.
//!
//! Only whole occurrences are replaced: the token, not directly preceded or followed by an ASCII
//! letter, digit or `_`. Replacing every substring went wrong for short tokens: an empty one put
//! `<redacted>` between every two characters of the provider's text, and a token of a few letters
//! was blanked out of ordinary words, so the pattern of what was hidden showed the token. A
//! token's length is bounded below for the same reason ([`MIN_TOKEN_CHARS`]): a long token does
//! not occur in provider text by chance.

/// Shorter tokens are refused when the sender is built. Meta's access tokens are well over a
/// hundred characters; one this short is a mistake (a placeholder, the wrong variable).
pub(crate) const MIN_TOKEN_CHARS: usize = 16;

const REDACTED: &str = "<redacted>";

/// `text` with every whole occurrence of `token` replaced by `<redacted>` (see the module docs).
/// An empty token matches nothing.
pub(crate) fn redact(text: &str, token: &str) -> String {
    if token.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find(token) {
        let start = from + found;
        let end = start + token.len();
        let whole = !text[..start].chars().next_back().is_some_and(continues)
            && !text[end..].chars().next().is_some_and(continues);
        if whole {
            out.push_str(&text[copied..start]);
            out.push_str(REDACTED);
            copied = end;
            from = end;
        } else {
            // The next match may start inside this one (`aa` in `aaa`): step one character on.
            from = start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// A character that would make the match part of a longer word.
fn continues(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "EAAGm0PX4ZCpsBAKZC9";

    #[test]
    fn whole_occurrences_are_replaced_wherever_they_stand() {
        for (text, expected) in [
            (
                format!("Invalid OAuth access token {TOKEN}."),
                "Invalid OAuth access token <redacted>.",
            ),
            (TOKEN.to_owned(), "<redacted>"),
            (
                format!("\"Bearer {TOKEN}\" and ?access_token={TOKEN}&x=1"),
                "\"Bearer <redacted>\" and ?access_token=<redacted>&x=1",
            ),
        ] {
            assert_eq!(redact(&text, TOKEN), expected);
        }
    }

    #[test]
    fn part_of_a_longer_word_is_not_the_token() {
        let text = format!("x{TOKEN} {TOKEN}_1 1{TOKEN}");
        assert_eq!(redact(&text, TOKEN), text);
    }

    #[test]
    fn a_short_or_empty_token_never_cuts_into_words() {
        let text = "Message failed to send because more than 24 hours have passed";
        assert_eq!(redact(text, ""), text);
        assert_eq!(redact(text, "e"), text);
        assert_eq!(redact(text, "ss"), text);
        assert_eq!(redact("a b aa a", "a"), "<redacted> b aa <redacted>");
    }

    #[test]
    fn multibyte_text_around_the_token_is_kept() {
        // Only ASCII letters and digits continue a word: when in doubt, redact.
        let text = format!("токен «{TOKEN}» недействителен, ключ{TOKEN}");
        assert_eq!(
            redact(&text, TOKEN),
            "токен «<redacted>» недействителен, ключ<redacted>"
        );
    }
}
