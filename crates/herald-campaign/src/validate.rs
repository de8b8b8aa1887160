//! From the positioned YAML tree to a [`Campaign`], collecting every problem.

use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use herald_core::cap::{CapPeriod, CapScope};
use herald_core::holiday::Calendar;
use herald_core::presets::Preset;
use herald_core::template::{
    LanguageMap, ParamPlace, ParamTemplate, RenderError, check_whatsapp_param,
};
use herald_core::window::{Days, LocalInterval};
use herald_core::{
    CampaignId, FrequencyCap, Purpose, Region, SendWindow, SenderId, TimeZone, UnknownZone,
    WindowSpec,
};

use crate::audience::Segment;
use crate::campaign::{
    AtZone, Audience, Button, Campaign, DeliveryMode, Header, MediaKind, OnReply, Schedule,
    ScheduleKind, Template,
};
use crate::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use crate::fields::{self, Field};
use crate::input::{MAX_DOCUMENT_BYTES, read_document};
use crate::yaml::{self, Node, NodeKind};

/// Reads and validates a campaign file; the audience path resolves against its directory.
/// `now` is the instant the campaign is checked for (a cron schedule must fire within
/// [`CRON_HORIZON_YEARS`] of it); the caller reads the clock, this crate never does.
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
        let obj = self.object(node, "audience", fields::AUDIENCE, false)?;
        let source_node = obj.get("source")?;
        let written = self.string(source_node, "audience.source")?;
        let source = self.base_dir.join(&written);
        let format_ok = [".csv", ".jsonl", ".ndjson"]
            .iter()
            .any(|ext| written.to_ascii_lowercase().ends_with(ext));
        if !format_ok {
            self.error(
                source_node,
                format!("audience file `{written}` must be .csv, .jsonl or .ndjson"),
            );
        } else if !source.is_file() {
            self.error(
                source_node,
                format!(
                    "audience file `{written}` not found (looked for {})",
                    source.display()
                ),
            );
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

    fn template(&mut self, node: &Node) -> Option<Template> {
        let obj = self.object(node, "template", fields::TEMPLATE, false)?;
        let name = obj.get("name").and_then(|n| {
            let name = self.string(n, "template.name")?;
            let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                self.error(n, format!("invalid template name `{name}`: lowercase letters, digits and underscores only"));
            }
            valid.then_some(name)
        });
        let language = obj.get("language").and_then(|n| self.language(n));
        let header = match obj.get("header") {
            Some(n) => self.header(n).map(Some),
            None => Some(None),
        };
        let mut params = Vec::new();
        let params_node = obj.get("params");
        if let Some(p) = params_node.and_then(|n| self.object(n, "template.params", &[], true)) {
            for (key, value) in p.entries {
                let (Some(param), Some(text)) = (key.as_str(), self.string(value, "a parameter"))
                else {
                    continue;
                };
                match ParamTemplate::parse(&text) {
                    Ok(t) => {
                        let what = format!("parameter `{param}`");
                        self.fixed_text(value, &what, &t, ParamPlace::Body);
                        params.push((param.to_owned(), t));
                    }
                    Err(e) => self.error(value, format!("parameter `{param}`: {e}")),
                }
            }
        }
        let mut buttons = Vec::new();
        let buttons_node = obj.get("buttons");
        if let Some(items) = buttons_node.and_then(|n| self.list(n, "template.buttons")) {
            if items.len() > fields::MAX_BUTTONS
                && let Some(node) = buttons_node
            {
                self.error(
                    node,
                    format!(
                        "template.buttons has {} buttons; WhatsApp allows at most {}",
                        items.len(),
                        fields::MAX_BUTTONS
                    ),
                );
            }
            for item in items {
                if let Some(button) = self.button(item) {
                    buttons.push(button);
                }
            }
        }
        Some(Template {
            name: name?,
            language: language?,
            header: header?,
            params,
            buttons,
        })
    }

    fn language(&mut self, node: &Node) -> Option<LanguageMap> {
        if let NodeKind::Scalar { .. } = node.kind {
            let code = self.language_code(node)?;
            return Some(LanguageMap::new([], code));
        }
        let obj = self.object(node, "template.language", &[], true)?;
        let mut default = None;
        let mut by_locale = Vec::new();
        for (key, value) in obj.entries {
            let (Some(locale), Some(language)) = (key.as_str(), self.language_code(value)) else {
                continue;
            };
            if locale.trim().is_empty() {
                self.error(key, "a locale in template.language must not be empty");
                continue;
            }
            if locale == "default" {
                default = Some(language);
            } else {
                by_locale.push((locale.to_owned(), language));
            }
        }
        if default.is_none() {
            self.error(
                node,
                "template.language needs a `default` for locales not listed",
            );
        }
        Some(LanguageMap::new(by_locale, default?))
    }

    /// A template language code: text with no blanks (`en`, `pt_BR`). An empty code would be
    /// refused by the provider for every recipient it is chosen for.
    fn language_code(&mut self, node: &Node) -> Option<String> {
        let code = self.string(node, "a language code")?;
        if code.trim().is_empty() || code.contains(char::is_whitespace) {
            self.error(
                node,
                format!("invalid language code `{code}`: expected a code such as en or pt_BR"),
            );
            return None;
        }
        Some(code)
    }

    /// Checks what every rendering of `template` shares against the provider's rules for
    /// `place`: a fixed text that breaks them would skip every recipient at send time.
    fn fixed_text(&mut self, node: &Node, what: &str, template: &ParamTemplate, place: ParamPlace) {
        let max = place.max_chars();
        if template.variables().next().is_some() {
            let fixed = template.fixed_chars();
            if fixed > max {
                let message = format!(
                    "the fixed text of {what} is {fixed} characters; WhatsApp allows at most \
                     {max} in all"
                );
                self.error(node, message);
            }
            return;
        }
        let Ok(text) = template.render(|_| None) else {
            return;
        };
        if let Err(RenderError::InvalidParameter { problem, .. }) =
            check_whatsapp_param(what, place, &text)
        {
            let length = text.chars().count();
            let message = if length > max {
                format!("{what} is {length} characters; WhatsApp allows at most {max}")
            } else {
                format!("{what} {problem}")
            };
            self.error(node, message);
        }
    }

    fn header(&mut self, node: &Node) -> Option<Header> {
        let obj = self.object(node, "template.header", fields::HEADER, false)?;
        let present: Vec<&(Node, Node)> =
            obj.entries.iter().filter(|(_, v)| !v.is_null()).collect();
        if present.len() != 1 {
            self.error(
                node,
                "template.header takes exactly one of image, video, document, text",
            );
            return None;
        }
        let (key, value) = present[0];
        let text = self.string(value, "the header")?;
        let kind = match key.as_str()? {
            "image" => MediaKind::Image,
            "video" => MediaKind::Video,
            "document" => MediaKind::Document,
            _ => {
                let template = ParamTemplate::parse(&text)
                    .map_err(|e| self.error(value, format!("header text: {e}")))
                    .ok()?;
                self.fixed_text(value, "the header text", &template, ParamPlace::HeaderText);
                return Some(Header::Text(template));
            }
        };
        if !text.starts_with("https://")
            || text.len() <= "https://".len()
            || text.contains(char::is_whitespace)
        {
            self.error(
                value,
                format!(
                    "header {} must be an https:// URL, found `{text}`",
                    key.as_str()?
                ),
            );
            return None;
        }
        Some(Header::Media { kind, link: text })
    }

    fn button(&mut self, node: &Node) -> Option<Button> {
        let obj = self.object(node, "a button", fields::BUTTON, false)?;
        let payload = obj
            .get("payload")
            .and_then(|n| self.string(n, "button payload"));
        let on_reply = match obj.get("on_reply") {
            None => Some(None),
            Some(n) if n.as_str() == Some("opt_out") => Some(Some(OnReply::OptOut)),
            Some(
                n @ Node {
                    kind: NodeKind::Map(_),
                    ..
                },
            ) => {
                let reply = self.object(n, "on_reply", fields::ON_REPLY, false)?;
                reply
                    .get("tag")
                    .and_then(|t| self.string(t, "tag"))
                    .map(|t| Some(OnReply::Tag(t)))
            }
            Some(n) => {
                self.error(n, "on_reply must be `opt_out` or `{ tag: name }`");
                None
            }
        };
        Some(Button {
            payload: payload?,
            on_reply: on_reply?,
        })
    }

    fn zone(&mut self, node: &Node, what: &str) -> Option<TimeZone> {
        let text = self.string(node, what)?;
        TimeZone::parse(&text)
            .map_err(|e| self.error(node, e.to_string()))
            .ok()
    }

    fn schedule(&mut self, node: &Node) -> Option<Schedule> {
        let obj = self.object(node, "schedule", fields::SCHEDULE, false)?;
        let expires_after = match obj.get("expires_after") {
            Some(n) => Some(self.duration(n, "expires_after")?),
            None => None,
        };
        let kind = match (obj.get("at"), obj.get("cron")) {
            (Some(_), Some(cron)) => {
                self.error(
                    cron,
                    "schedule takes either `at` (one-off) or `cron` (recurring), not both",
                );
                return None;
            }
            (None, None) => {
                self.error(node, "schedule needs `at` (one-off) or `cron` (recurring)");
                return None;
            }
            (Some(at), None) => {
                if let Some(tz) = obj.get("timezone") {
                    self.error(
                        tz,
                        "`timezone` goes with `cron`; for `at` use `in: <zone>` or `in: recipient`",
                    );
                }
                let written = self.string(at, "schedule.at")?;
                let local = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
                    .iter()
                    .find_map(|f| NaiveDateTime::parse_from_str(&written, f).ok());
                let local = local.filter(|l| (2000..=2200).contains(&chrono::Datelike::year(l)));
                let Some(local) = local else {
                    self.error(at, format!("invalid schedule.at `{written}`: expected local wall time YYYY-MM-DDTHH:MM"));
                    return None;
                };
                let zone = match obj.get("in") {
                    None => AtZone::Recipient,
                    Some(n) if n.as_str() == Some("recipient") => AtZone::Recipient,
                    Some(n) => AtZone::Fixed(self.zone(n, "schedule.in")?),
                };
                ScheduleKind::At {
                    local,
                    written,
                    zone,
                }
            }
            (None, Some(cron)) => {
                if let Some(n) = obj.get("in") {
                    self.error(n, "`in` goes with `at`; a cron schedule runs in `timezone`");
                }
                let expression = self.string(cron, "schedule.cron")?;
                let zone = match obj.get("timezone") {
                    Some(n) => self.zone(n, "schedule.timezone")?,
                    None => {
                        self.error(node, "a cron schedule needs `timezone` (an IANA zone)");
                        return None;
                    }
                };
                let schedule = match crate::cron::parse(&expression) {
                    Ok(s) => s,
                    Err(message) => {
                        self.error(cron, format!("invalid cron `{expression}`: {message}"));
                        return None;
                    }
                };
                if crate::cron::first_fire_within_horizon(&schedule, zone, self.now).is_none() {
                    self.error(
                        cron,
                        format!(
                            "cron `{expression}` never fires in the {} years after {}",
                            crate::cron::HORIZON_YEARS,
                            self.now.format("%Y-%m-%d")
                        ),
                    );
                    return None;
                }
                ScheduleKind::Cron {
                    expression,
                    schedule: Box::new(schedule),
                    zone,
                }
            }
        };
        Some(Schedule {
            kind,
            expires_after,
        })
    }

    fn send_window(&mut self, node: &Node) -> Option<(SendWindow, UnknownZone)> {
        let obj = self.object(node, "send_window", fields::SEND_WINDOW, false)?;
        let mut spec = WindowSpec::default();
        let mut ok = true;
        if let Some(n) = obj.get("preset") {
            for (name, item) in self.one_or_many(n, "a preset") {
                match name.parse::<Preset>() {
                    Ok(p) => spec.presets.push(p),
                    Err(e) => {
                        let names = Preset::ALL.map(Preset::name);
                        let hint = did_you_mean(&name, names)
                            .map(|n| format!("; did you mean `{n}`?"))
                            .unwrap_or_default();
                        self.error(&item, format!("{e}{hint}"));
                        ok = false;
                    }
                }
            }
        }
        if let Some(n) = obj.get("hours") {
            ok &= self.hours(n, &mut spec);
        }
        if let Some(n) = obj.get("holidays") {
            let items = self
                .list(n, "send_window.holidays")
                .map(<[Node]>::to_vec)
                .unwrap_or_default();
            let names: Vec<(String, Node)> = items
                .iter()
                .filter_map(|i| self.string(i, "a holiday").map(|s| (s, i.clone())))
                .collect();
            for (name, item) in names {
                if name == "country" {
                    spec.country_calendar = true;
                } else if let Ok(date) = NaiveDate::parse_from_str(&name, "%Y-%m-%d") {
                    spec.closed_dates.push(date);
                } else {
                    match name.parse::<Calendar>() {
                        Ok(c) => spec.calendars.push(c),
                        Err(e) => {
                            self.error(&item, e.to_string());
                            ok = false;
                        }
                    }
                }
            }
        }
        let unknown = match obj.get("unknown_timezone") {
            None => UnknownZone::Conservative,
            Some(n) if n.as_str() == Some("conservative") => UnknownZone::Conservative,
            Some(n) => UnknownZone::Assume(self.zone(n, "send_window.unknown_timezone")?),
        };
        if !ok {
            return None;
        }
        match SendWindow::new(spec) {
            Ok(window) => Some((window, unknown)),
            Err(e) => {
                self.error(node, e.to_string());
                None
            }
        }
    }

    fn hours(&mut self, node: &Node, spec: &mut WindowSpec) -> bool {
        let Some(obj) = self.object(node, "send_window.hours", &[], true) else {
            return false;
        };
        if obj.entries.is_empty() {
            self.error(
                node,
                "send_window.hours is empty: list days and their hours, such as \
                 mon-fri: 09:00-20:00",
            );
            return false;
        }
        let mut ok = true;
        for (key, value) in obj.entries {
            let days = match key.as_str().map(Days::parse) {
                Some(Ok(days)) => days,
                Some(Err(e)) => {
                    self.error(key, e.to_string());
                    ok = false;
                    continue;
                }
                None => continue,
            };
            let mut intervals = Vec::new();
            for (text, item) in self.one_or_many(value, "hours") {
                match LocalInterval::parse(&text) {
                    Ok(i) => intervals.push(i),
                    Err(e) => {
                        self.error(&item, e.to_string());
                        ok = false;
                    }
                }
            }
            spec.hours.push((days, intervals));
        }
        ok
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
