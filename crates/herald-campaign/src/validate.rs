//! From the positioned YAML tree to a [`Campaign`], collecting every problem.
//!
//! The parts with rules of their own have their own files: [`template`], [`schedule`],
//! [`window`].

mod schedule;
mod template;
mod window;

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use herald_core::cap::{CapPeriod, CapScope};
use herald_core::{
    CampaignId, FrequencyCap, Purpose, Region, SendWindow, SenderId, TimeZone, UnknownZone,
};

use crate::audience::Segment;
use crate::campaign::{Audience, Campaign, DeliveryMode};
use crate::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use crate::fields::{self, Field};
use crate::input::{MAX_DOCUMENT_BYTES, read_document};
use crate::yaml::{self, Node, NodeKind};

/// Reads and validates a campaign file; the audience path resolves against its directory.
/// `now` is the instant the campaign is checked for (a cron schedule must fire within
/// [`HORIZON_YEARS`](crate::cron::HORIZON_YEARS) of it); the caller reads the clock, this crate never does.
///
/// The file must be a regular file of at most [`MAX_DOCUMENT_BYTES`] (see [`crate::input`]).
pub fn load(path: &Path, now: DateTime<Utc>) -> Result<Campaign, Diagnostics> {
    let label = path.display().to_string();
    let text = read_document(path, MAX_DOCUMENT_BYTES).map_err(|e| {
        Diagnostics(vec![Diagnostic {
            file: label.clone(),
            line: 1,
            column: 1,
            message: e.kind.to_string(),
        }])
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    parse(&label, base, &text, now)
}

/// Validates campaign YAML `text`, reporting positions in `file`; `now` as for [`load`].
pub fn parse(
    file: &str,
    base_dir: &Path,
    text: &str,
    now: DateTime<Utc>,
) -> Result<Campaign, Diagnostics> {
    parse_in(file, base_dir, text, now, AudienceFile::Check)
}

/// Validates campaign YAML `text` that came with its audience, uploaded as a file named
/// `audience_name` and saved in `base_dir` (the admin API's `POST /v1/campaigns`):
/// `audience.source` must be omitted or equal `audience_name`, so a campaign sent over HTTP
/// can never name a path on the server. Everything else is checked exactly as [`parse`] checks
/// it.
pub fn parse_uploaded(
    file: &str,
    base_dir: &Path,
    text: &str,
    audience_name: &str,
    now: DateTime<Utc>,
) -> Result<Campaign, Diagnostics> {
    parse_in(
        file,
        base_dir,
        text,
        now,
        AudienceFile::Uploaded(audience_name),
    )
}

/// Rebuilds a campaign from the text a run stored (`NewRun::campaign_text`), without opening
/// or checking the audience file: a worker on another machine, or after the file moved, still
/// knows the run's template, window, caps and delivery mode. The audience was read when the run
/// was expanded; its path here (resolved against `base_dir`, as [`parse`] does) is only a name.
/// Everything else is checked exactly as [`parse`] checks it, so the same text gives the same
/// campaign.
pub fn parse_stored(
    file: &str,
    base_dir: &Path,
    text: &str,
    now: DateTime<Utc>,
) -> Result<Campaign, Diagnostics> {
    parse_in(file, base_dir, text, now, AudienceFile::Skip)
}

/// The audience's name in a stored campaign that came with its audience and so names none
/// (a label only: a stored campaign's audience is never read again).
pub const UPLOADED_AUDIENCE: &str = "uploaded-audience.csv";

/// Whether validation looks at the audience file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AudienceFile<'a> {
    /// It must exist and be a regular file (a campaign about to be expanded).
    Check,
    /// Not opened (a stored campaign, whose audience was already expanded). `source` may be
    /// omitted: a campaign uploaded with its audience is stored without one.
    Skip,
    /// Uploaded with the campaign under this file name: `source` is omitted or this name, and
    /// the file (saved beside the campaign) is checked as with `Check`.
    Uploaded(&'a str),
}

fn parse_in(
    file: &str,
    base_dir: &Path,
    text: &str,
    now: DateTime<Utc>,
    audience_file: AudienceFile<'_>,
) -> Result<Campaign, Diagnostics> {
    if text.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(Diagnostics(vec![Diagnostic {
            file: file.to_owned(),
            line: 1,
            column: 1,
            message: format!("larger than the limit of {MAX_DOCUMENT_BYTES} bytes"),
        }]));
    }
    let (root, problems) = yaml::parse(file, text).map_err(|d| Diagnostics(vec![d]))?;
    let mut cx = Cx {
        file,
        base_dir,
        now,
        audience_file,
        problems,
    };
    let campaign = cx.campaign(&root);
    let mut problems = cx.problems;
    problems.sort_by_key(|d| (d.line, d.column));
    match campaign {
        Some(campaign) if problems.is_empty() => Ok(campaign),
        _ if problems.is_empty() => Err(Diagnostics(vec![Diagnostic {
            file: file.to_owned(),
            line: 1,
            column: 1,
            message: "invalid campaign".into(),
        }])),
        _ => Err(Diagnostics(problems)),
    }
}

struct Cx<'a> {
    file: &'a str,
    base_dir: &'a Path,
    /// The instant the campaign is checked for.
    now: DateTime<Utc>,
    /// Whether the audience file is looked at.
    audience_file: AudienceFile<'a>,
    problems: Vec<Diagnostic>,
}

/// A checked mapping: known keys only, required keys present.
struct Obj<'n> {
    entries: &'n [(Node, Node)],
}

impl<'n> Obj<'n> {
    /// The key node of `name`, when the mapping has it (whatever its value, `null` included).
    fn key(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(k, _)| k)
    }

    fn get(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }
}

impl<'a> Cx<'a> {
    fn error(&mut self, node: &Node, message: impl Into<String>) {
        self.problems.push(Diagnostic {
            file: self.file.to_owned(),
            line: node.line,
            column: node.column,
            message: message.into(),
        });
    }

    /// Checks that `node` is a mapping whose keys are all in `fields` (`open`: other keys
    /// allowed) and that required keys are present.
    fn object<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        fields: &[Field],
        open: bool,
    ) -> Option<Obj<'n>> {
        let NodeKind::Map(entries) = &node.kind else {
            self.error(
                node,
                format!("{what} must be a mapping, found {}", node.kind_name()),
            );
            return None;
        };
        // A misspelt required key is one mistake: report the unknown key with its suggestion,
        // not also the missing key it was meant to be.
        let mut suggested: Vec<&str> = Vec::new();
        for (key, _) in entries {
            let Some(name) = key.as_str() else {
                self.error(key, format!("keys of {what} must be plain names"));
                continue;
            };
            if !open && !fields.iter().any(|f| f.name == name) {
                let hint = match did_you_mean(name, fields.iter().map(|f| f.name)) {
                    Some(near) => {
                        suggested.push(near);
                        format!("; did you mean `{near}`?")
                    }
                    None => format!(
                        "; expected one of {}",
                        fields.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
                    ),
                };
                self.error(key, format!("unknown field `{name}` in {what}{hint}"));
            }
        }
        let obj = Obj { entries };
        for f in fields
            .iter()
            .filter(|f| f.required && !suggested.contains(&f.name))
        {
            if obj.get(f.name).is_none() {
                self.error(node, format!("{what} is missing `{}`", f.name));
            }
        }
        Some(obj)
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            NodeKind::Scalar { value, .. } if !node.is_null() => Some(value.clone()),
            _ => {
                self.error(
                    node,
                    format!("{what} must be text, found {}", node.kind_name()),
                );
                None
            }
        }
    }

    fn list<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &node.kind {
            NodeKind::Seq(items) => Some(items),
            _ => {
                self.error(
                    node,
                    format!("{what} must be a list, found {}", node.kind_name()),
                );
                None
            }
        }
    }

    /// A scalar or a list of scalars, as a list.
    fn one_or_many(&mut self, node: &Node, what: &str) -> Vec<(String, Node)> {
        match &node.kind {
            NodeKind::Seq(items) => items
                .iter()
                .filter_map(|item| self.string(item, what).map(|s| (s, item.clone())))
                .collect(),
            _ => self
                .string(node, what)
                .map(|s| vec![(s, node.clone())])
                .unwrap_or_default(),
        }
    }

    fn enumerated<T>(&mut self, node: &Node, what: &str, options: &[(&str, T)]) -> Option<T>
    where
        T: Copy,
    {
        let value = self.string(node, what)?;
        if let Some((_, v)) = options.iter().find(|(name, _)| *name == value) {
            return Some(*v);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let hint = match did_you_mean(&value, names.iter().copied()) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!("expected one of {}", names.join(", ")),
        };
        self.error(node, format!("invalid {what} `{value}`: {hint}"));
        None
    }

    fn campaign(&mut self, root: &Node) -> Option<Campaign> {
        let top = self.object(root, "the campaign", fields::CAMPAIGN, false)?;
        let id = top.get("id").and_then(|n| {
            let text = self.string(n, "id")?;
            CampaignId::parse(&text)
                .map_err(|e| self.error(n, e.to_string()))
                .ok()
        });
        let name = top.get("name").and_then(|n| self.string(n, "name"));
        let sender = top.get("sender").and_then(|n| {
            let text = self.string(n, "sender")?;
            SenderId::parse(&text)
                .map_err(|e| self.error(n, e.to_string()))
                .ok()
        });
        let purpose = top.get("purpose").and_then(|n| {
            self.enumerated(
                n,
                "purpose",
                &[
                    ("marketing", Purpose::Marketing),
                    ("transactional", Purpose::Transactional),
                    ("service", Purpose::Service),
                ],
            )
        });
        let audience = top.get("audience").and_then(|n| self.audience(n));
        let template = top.get("template").and_then(|n| self.template(n));
        let schedule = top.get("schedule").and_then(|n| self.schedule(n));
        let always_open = top.get("send_window").is_none();
        let (window, unknown_zone) = match top.get("send_window") {
            Some(n) => self.send_window(n).unzip(),
            // `send_window:` with nothing after it is an unfinished window, not "always open".
            None if top.key("send_window").is_some() => {
                self.error(
                    top.key("send_window").unwrap_or(root),
                    "send_window is empty: give `hours` or a `preset`, or leave it out (only \
                     transactional and service campaigns may send at any hour)",
                );
                (None, None)
            }
            // Marketing must say when it may reach people; transactional and service messages
            // (a shipped order, a code) answer the recipient's own action and may go any time.
            None if purpose == Some(Purpose::Marketing) => {
                self.error(
                    root,
                    "the campaign is missing `send_window`: a marketing campaign must say when \
                     it may send (only transactional and service campaigns may send at any hour)",
                );
                (None, None)
            }
            None => (Some(SendWindow::always()), Some(UnknownZone::Conservative)),
        };
        let mut caps = match top.get("frequency_cap") {
            Some(n) => self.caps(n),
            None => Some(Vec::new()),
        };
        if let (Some(caps), Some(window)) = (&mut caps, &window) {
            caps.extend(window.presets().iter().filter_map(|p| p.legal_cap()));
        }
        let rate_per_second = top.get("rate_limit").and_then(|n| self.rate(n));
        let delivery = match top.get("delivery") {
            Some(n) => self.enumerated(
                n,
                "delivery",
                &[
                    ("at_most_once", DeliveryMode::AtMostOnce),
                    ("at_least_once", DeliveryMode::AtLeastOnce),
                ],
            ),
            None => Some(DeliveryMode::AtMostOnce),
        };
        let spread = match top.get("spread") {
            Some(n) => self.duration(n, "spread"),
            None => Some(herald_core::spread::DEFAULT_SPREAD),
        };
        let id = id?;
        Some(Campaign {
            name: name.unwrap_or_else(|| id.to_string()),
            id,
            sender,
            purpose: purpose?,
            audience: audience?,
            template: template?,
            schedule: schedule?,
            window: window?,
            always_open,
            unknown_zone: unknown_zone?,
            caps: caps?,
            rate_per_second,
            delivery: delivery?,
            spread: spread?,
        })
    }

    fn duration(&mut self, node: &Node, what: &str) -> Option<TimeDelta> {
        let text = self.string(node, what)?;
        let parsed = text.char_indices().last().and_then(|(split, _)| {
            let (number, unit) = text.split_at(split);
            let n: i64 = number
                .parse()
                .ok()
                .filter(|n| *n > 0 && *n <= 400 * 86_400)?;
            match unit {
                "s" => Some(TimeDelta::seconds(n)),
                "m" => Some(TimeDelta::minutes(n)),
                "h" => Some(TimeDelta::hours(n)),
                "d" => Some(TimeDelta::days(n)),
                _ => None,
            }
        });
        if parsed.is_none() {
            self.error(
                node,
                format!("invalid {what} `{text}`: expected a duration such as 90s, 10m, 48h or 7d"),
            );
        }
        parsed
    }

    fn audience(&mut self, node: &Node) -> Option<Audience> {
        let table = match self.audience_file {
            AudienceFile::Check => fields::AUDIENCE,
            AudienceFile::Skip | AudienceFile::Uploaded(_) => fields::AUDIENCE_SOURCE_OPTIONAL,
        };
        let obj = self.object(node, "audience", table, false)?;
        let (written, at) = match (obj.get("source"), self.audience_file) {
            (Some(source_node), _) => (self.string(source_node, "audience.source")?, source_node),
            (None, AudienceFile::Uploaded(name)) => (name.to_owned(), node),
            // Stored without a source: uploaded with its campaign; the name is only a label.
            (None, _) => (UPLOADED_AUDIENCE.to_owned(), node),
        };
        if let AudienceFile::Uploaded(name) = self.audience_file
            && written != name
        {
            self.error(
                at,
                format!(
                    "audience.source `{written}` must be omitted or equal the uploaded audience's \
                     file name `{name}`: a campaign sent over the API never names a path on the \
                     server"
                ),
            );
            return None;
        }
        let source = self.base_dir.join(&written);
        let format_ok = [".csv", ".jsonl", ".ndjson"]
            .iter()
            .any(|ext| written.to_ascii_lowercase().ends_with(ext));
        if !format_ok {
            self.error(
                at,
                format!("audience file `{written}` must be .csv, .jsonl or .ndjson"),
            );
        } else if self.audience_file != AudienceFile::Skip {
            match std::fs::metadata(&source) {
                Err(_) => self.error(
                    at,
                    format!(
                        "audience file `{written}` not found (looked for {})",
                        source.display()
                    ),
                ),
                Ok(metadata) => {
                    if let Some(kind) = crate::input::file_kind(&metadata) {
                        let message = format!(
                            "audience file `{written}` is not a regular file ({kind}): audiences \
                             are read from regular files only"
                        );
                        self.error(at, message);
                    }
                }
            }
        }
        let default_country = obj
            .get("default_country")
            .and_then(|n| self.region(n, "audience.default_country"));
        let segment = match obj.get("where") {
            Some(n) => self.segment(n)?,
            None => Segment::default(),
        };
        Some(Audience {
            source,
            source_as_written: written,
            segment,
            default_country,
        })
    }

    fn region(&mut self, node: &Node, what: &str) -> Option<Region> {
        let text = self.string(node, what)?;
        Region::parse(&text)
            .map_err(|e| self.error(node, e.to_string()))
            .ok()
    }

    fn segment(&mut self, node: &Node) -> Option<Segment> {
        let obj = self.object(node, "audience.where", &fields::AUDIENCE_WHERE, true)?;
        let mut segment = Segment::default();
        for (key, value) in obj.entries {
            let Some(name) = key.as_str() else { continue };
            match name {
                "tags" => {
                    segment.tags = self
                        .one_or_many(value, "a tag")
                        .into_iter()
                        .map(|(s, _)| s)
                        .collect()
                }
                "country" => segment.country = self.region(value, "audience.where.country"),
                _ => {
                    let values = self
                        .one_or_many(value, "an attribute value")
                        .into_iter()
                        .map(|(s, _)| s)
                        .collect();
                    segment.attributes.insert(name.to_owned(), values);
                }
            }
        }
        Some(segment)
    }

    fn zone(&mut self, node: &Node, what: &str) -> Option<TimeZone> {
        let text = self.string(node, what)?;
        TimeZone::parse(&text)
            .map_err(|e| self.error(node, e.to_string()))
            .ok()
    }

    fn caps(&mut self, node: &Node) -> Option<Vec<FrequencyCap>> {
        let items = self.list(node, "frequency_cap")?;
        let mut caps = Vec::new();
        let mut ok = true;
        for item in items {
            match self.cap(item) {
                Some(cap) => caps.push(cap),
                None => ok = false,
            }
        }
        ok.then_some(caps)
    }

    fn cap(&mut self, node: &Node) -> Option<FrequencyCap> {
        let obj = self.object(node, "a frequency cap", fields::CAP, false)?;
        let max = obj.get("max").and_then(|n| self.positive(n, "max"));
        let calendar = match obj.get("calendar").map(|n| (n, n.as_str())) {
            None => Some(false),
            Some((_, Some("true"))) => Some(true),
            Some((_, Some("false"))) => Some(false),
            Some((n, _)) => {
                self.error(n, "calendar must be true or false");
                None
            }
        };
        let period = obj.get("per").and_then(|n| {
            let text = self.string(n, "per")?;
            CapPeriod::parse(&text, calendar.unwrap_or(false))
                .map_err(|e| self.error(n, e.to_string()))
                .ok()
        });
        let scope = match obj.get("scope") {
            Some(n) => self.enumerated(
                n,
                "cap scope",
                &[
                    ("campaign", CapScope::Campaign),
                    ("purpose", CapScope::Purpose),
                    ("all", CapScope::All),
                ],
            ),
            None => Some(CapScope::Purpose),
        };
        FrequencyCap::new(max?, period?, scope?)
            .map_err(|e| self.error(node, e.to_string()))
            .ok()
    }

    fn positive(&mut self, node: &Node, what: &str) -> Option<u32> {
        let text = self.string(node, what)?;
        match text.parse::<u32>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                self.error(
                    node,
                    format!("{what} must be a whole number of at least 1, found `{text}`"),
                );
                None
            }
        }
    }

    fn rate(&mut self, node: &Node) -> Option<u32> {
        let obj = self.object(node, "rate_limit", fields::RATE_LIMIT, false)?;
        obj.get("per_second")
            .and_then(|n| self.positive(n, "rate_limit.per_second"))
    }
}
