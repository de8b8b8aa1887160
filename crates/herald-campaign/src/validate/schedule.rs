//! `schedule`: a one-off `at` in a zone, or a recurring `cron` that must fire within
//! [`HORIZON_YEARS`](crate::cron::HORIZON_YEARS) of the instant the campaign is checked at.
//! `catch_up` and `overlap` are about a recurring schedule's runs, so they go with `cron` only.

use chrono::NaiveDateTime;

use super::Cx;
use crate::campaign::{AtZone, CatchUp, Overlap, Schedule, ScheduleKind};
use crate::diagnostic::did_you_mean;
use crate::fields;
use crate::fires::CronFires;
use crate::yaml::Node;

impl Cx<'_> {
    pub(super) fn schedule(&mut self, node: &Node) -> Option<Schedule> {
        let obj = self.object(node, "schedule", fields::SCHEDULE, false)?;
        let expires_after = match obj.get("expires_after") {
            Some(n) => Some(self.duration(n, "expires_after")?),
            None => None,
        };
        let (kind, catch_up, overlap) = match (obj.get("at"), obj.get("cron")) {
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
                for key in ["catch_up", "overlap"] {
                    if let Some(n) = obj.get(key) {
                        self.error(
                            n,
                            format!(
                                "`{key}` goes with `cron`: a one-off `at` schedule has a single run"
                            ),
                        );
                    }
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
                let kind = ScheduleKind::At {
                    local,
                    written,
                    zone,
                };
                (kind, Some(CatchUp::default()), Some(Overlap::default()))
            }
            (None, Some(cron)) => {
                if let Some(n) = obj.get("in") {
                    self.error(n, "`in` goes with `at`; a cron schedule runs in `timezone`");
                }
                let catch_up = match obj.get("catch_up") {
                    Some(n) => self.choice(
                        n,
                        "catch_up",
                        fields::CATCH_UP,
                        &[CatchUp::Latest, CatchUp::None],
                    ),
                    None => Some(CatchUp::default()),
                };
                let overlap = match obj.get("overlap") {
                    Some(n) => self.choice(
                        n,
                        "overlap",
                        fields::OVERLAP,
                        &[Overlap::Skip, Overlap::Allow],
                    ),
                    None => Some(Overlap::default()),
                };
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
                let fires = CronFires::new(&schedule, &expression, zone);
                if crate::cron::first_fire_within_horizon(fires, self.now).is_none() {
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
                let kind = ScheduleKind::Cron {
                    expression,
                    schedule: Box::new(schedule),
                    zone,
                };
                (kind, catch_up, overlap)
            }
        };
        Some(Schedule {
            kind,
            expires_after,
            catch_up: catch_up?,
            overlap: overlap?,
        })
    }

    /// One of `names` (paired with `values`); anything else is an error listing them all.
    fn choice<T: Copy>(
        &mut self,
        node: &Node,
        key: &str,
        names: &[&str],
        values: &[T],
    ) -> Option<T> {
        let value = self.string(node, &format!("schedule.{key}"))?;
        if let Some(i) = names.iter().position(|name| *name == value) {
            return values.get(i).copied();
        }
        let hint = match did_you_mean(&value, names.iter().copied()) {
            Some(near) => format!("; did you mean `{near}`?"),
            None => String::new(),
        };
        self.error(
            node,
            format!(
                "invalid schedule.{key} `{value}`: expected one of {}{hint}",
                names.join(", ")
            ),
        );
        None
    }
}
