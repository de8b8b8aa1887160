//! A strict reader of Prometheus text exposition format 0.0.4, for tests of `/metrics`: every
//! line must be a `# HELP`, a `# TYPE`, another comment, blank, or a well-formed sample, and the
//! text is refused (with the line number) on anything a scraper would refuse or misread:
//!
//! - metric and label names outside `[a-zA-Z_:][a-zA-Z0-9_:]*` / `[a-zA-Z_][a-zA-Z0-9_]*`;
//! - a label value with an unknown escape (only `\\`, `\"` and `\n` exist) or not closed;
//! - a value that is not a float (`NaN`, `+Inf`, `-Inf` allowed), a timestamp not an integer;
//! - a `# TYPE` of an unknown type, given twice, or after a sample of its metric;
//! - a sample of a typed family whose suffix does not fit the type (`_sum`/`_count` only for a
//!   summary or histogram, `_bucket` only for a histogram), a label given twice, or the same
//!   series twice.
//!
//! It is small on purpose (no crate of this kind is both strict and kept up), and knows the
//! 0.0.4 text format only, not OpenMetrics.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name as written (with `_sum`, `_count`, `_bucket` suffixes).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// The samples of `text`, or the first problem as `line N: what`.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut sampled: BTreeSet<String> = BTreeSet::new();
    let mut series: BTreeSet<(String, Vec<(String, String)>)> = BTreeSet::new();
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let at = |what: String| format!("line {}: {what}: {line:?}", index + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    check_metric_name(name).map_err(at)?;
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(at(format!("unknown type `{kind}`")));
                    }
                    if sampled.contains(name) {
                        return Err(at(format!("TYPE of `{name}` after its samples")));
                    }
                    if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                        return Err(at(format!("second TYPE for `{name}`")));
                    }
                }
                (Some("TYPE"), ..) => return Err(at("TYPE needs a name and a type".into())),
                (Some("HELP"), Some(name), _) => check_metric_name(name).map_err(at)?,
                (Some("HELP"), ..) => return Err(at("HELP needs a name".into())),
                _ => {}
            }
            continue;
        }
        let sample = sample(line).map_err(at)?;
        let family = family(&sample.name, &types).map_err(at)?;
        sampled.insert(family);
        let key = (
            sample.name.clone(),
            sample
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        if !series.insert(key) {
            return Err(at("the same series twice".into()));
        }
        samples.push(sample);
    }
    Ok(samples)
}

/// The family a sample belongs to, checking its suffix against the family's type.
fn family(name: &str, types: &HashMap<String, String>) -> Result<String, String> {
    for (suffix, allowed) in [
        ("_bucket", &["histogram"][..]),
        ("_sum", &["histogram", "summary"][..]),
        ("_count", &["histogram", "summary"][..]),
    ] {
        if let Some(base) = name.strip_suffix(suffix)
            && let Some(kind) = types.get(base)
        {
            if allowed.contains(&kind.as_str()) {
                return Ok(base.to_owned());
            }
            return Err(format!("`{name}` in a {kind} family"));
        }
    }
    if let Some(kind) = types.get(name)
        && kind == "histogram"
    {
        return Err(format!("`{name}` without a suffix in a histogram family"));
    }
    Ok(name.to_owned())
}

fn check_metric_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("bad metric name `{name}`"))
    }
}

fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!("bad label name `{name}`"))
    }
}

fn sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("a sample without a value")?;
    let name = &line[..name_end];
    check_metric_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = labels_of(after, &mut labels)?;
    }
    let rest = rest
        .strip_prefix(' ')
        .ok_or("a single space before the value")?;
    let mut parts = rest.split(' ');
    let value = parts.next().ok_or("no value")?;
    let value = float(value)?;
    if let Some(timestamp) = parts.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| format!("bad timestamp `{timestamp}`"))?;
    }
    if parts.next().is_some() {
        return Err("text after the timestamp".into());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Reads `name="value",…}` into `labels`; returns what follows the `}`.
fn labels_of<'a>(
    mut rest: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, String> {
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let eq = rest.find('=').ok_or("a label without `=`")?;
        let name = &rest[..eq];
        check_label_name(name)?;
        let mut chars = rest[eq + 1..].char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err(format!("label `{name}`: its value is not quoted"));
        }
        let mut value = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(eq + 1 + i + 1);
                    break;
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => return Err(format!("label `{name}`: bad escape {other:?}")),
                },
                '\n' => return Err(format!("label `{name}`: a raw line break")),
                c => value.push(c),
            }
        }
        let end = end.ok_or_else(|| format!("label `{name}`: value not closed"))?;
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label `{name}` twice"));
        }
        rest = &rest[end..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("labels must be separated by `,` and closed by `}`".into());
        }
    }
}

fn float(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ if text
            .chars()
            .all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) =>
        {
            text.parse::<f64>()
                .map_err(|_| format!("bad value `{text}`"))
        }
        _ => Err(format!("bad value `{text}`")),
    }
}

/// The sum of the samples named `name` whose labels include every pair of `with`.
pub fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_a_scraper_reads() {
        let text = "# HELP a_total Things.\n# TYPE a_total counter\n\
                    a_total{x=\"1\",y=\"q\\\"\\\\\\n\"} 3\na_total 4 1700000000000\n\
                    # TYPE s summary\ns{quantile=\"0.5\"} 0.1\ns_sum 1.5\ns_count 2\n\
                    g NaN\nh +Inf\n";
        let samples = parse(text).unwrap();
        assert_eq!(samples.len(), 7);
        assert_eq!(samples[0].labels["y"], "q\"\\\n");
        assert_eq!(sum(&samples, "a_total", &[]), 7.0);
        assert_eq!(sum(&samples, "a_total", &[("x", "1")]), 3.0);
    }

    #[test]
    fn refuses_what_a_scraper_refuses_or_misreads() {
        for bad in [
            "1a 1",
            "a{1x=\"v\"} 1",
            "a{x=v} 1",
            "a{x=\"v} 1",
            "a{x=\"\\t\"} 1",
            "a{x=\"v\" y=\"w\"} 1",
            "a{x=\"v\",x=\"w\"} 1",
            "a one",
            "a 1 2 3",
            "a 1 x",
            "a  1",
            "# TYPE a countr",
            "# TYPE a counter\n# TYPE a counter",
            "a 1\n# TYPE a counter",
            "a 1\na 2",
            "# TYPE c counter\nc_sum 1",
            "# TYPE s summary\ns_bucket 1",
            "# TYPE h histogram\nh 1",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
