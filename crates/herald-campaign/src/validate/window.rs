//! `send_window`: presets, hours, holidays. A window must have open hours (hours or a preset):
//! nothing in it ever means "any time".

use chrono::NaiveDate;
use herald_core::holiday::Calendar;
use herald_core::presets::Preset;
use herald_core::window::{Days, LocalInterval};
use herald_core::{SendWindow, UnknownZone, WindowSpec};

use super::Cx;
use crate::diagnostic::did_you_mean;
use crate::fields;
use crate::yaml::Node;

impl Cx<'_> {
    pub(super) fn send_window(&mut self, node: &Node) -> Option<(SendWindow, UnknownZone)> {
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

    pub(super) fn hours(&mut self, node: &Node, spec: &mut WindowSpec) -> bool {
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
}
