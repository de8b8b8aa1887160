//! Problems found in a campaign file, each pinned to a place in it.

use std::fmt;

/// One problem: `file:line:col: message`, the format editors and terminals link to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong, lowercase, with a hint where one helps.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for Diagnostic {}

/// Every problem of one file, in source order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.0))]
pub struct Diagnostics(pub Vec<Diagnostic>);

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The closest of `candidates` to `input`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let input_lower = input.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&input_lower, c), c))
        .filter(|(d, c)| *d <= (c.len().max(input.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        let fields = ["purpose", "schedule", "send_window", "template"];
        assert_eq!(did_you_mean("purpse", fields), Some("purpose"));
        assert_eq!(did_you_mean("send_windows", fields), Some("send_window"));
        assert_eq!(did_you_mean("Schedule", fields), Some("schedule"));
        assert_eq!(did_you_mean("colour", fields), None);
    }

    #[test]
    fn displays_as_file_line_column() {
        let d = Diagnostic {
            file: "a.yaml".into(),
            line: 12,
            column: 10,
            message: "bad".into(),
        };
        assert_eq!(d.to_string(), "a.yaml:12:10: bad");
    }
}
