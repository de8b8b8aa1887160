//! Send-window presets, as data. Two kinds, kept apart on purpose:
//!
//! - **Law** presets are quiet-hours limits. They are intersected with whatever hours the campaign
//!   gives, and cannot be widened by it; some also bring a frequency cap.
//! - **Convention** presets are default business hours. Explicit `hours` replace them for the days
//!   they name; they carry no legal weight and say so.

use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;

use crate::cap::{CapPeriod, CapScope, FrequencyCap};
use crate::window::{Days, LocalInterval, WeeklyHours};

/// Law or convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresetKind {
    /// A legal limit: intersected, never overridden.
    Law,
    /// Customary business hours: a default the campaign may override.
    Convention,
}

/// Why a preset name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown send-window preset {input:?}: expected one of us-tcpa, us-fl, us-ok, ru-business, eu-business"
)]
pub struct PresetError {
    /// The rejected input.
    pub input: String,
}

/// A built-in preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// US federal quiet hours for telephone solicitation.
    UsTcpa,
    /// Florida Telephone Solicitation Act.
    UsFl,
    /// Oklahoma Telephone Solicitation Act of 2022.
    UsOk,
    /// Russian business hours (convention).
    RuBusiness,
    /// European business hours (convention).
    EuBusiness,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 5] = [
        Preset::UsTcpa,
        Preset::UsFl,
        Preset::UsOk,
        Preset::RuBusiness,
        Preset::EuBusiness,
    ];

    /// The name used in campaign files.
    pub fn name(self) -> &'static str {
        match self {
            Preset::UsTcpa => "us-tcpa",
            Preset::UsFl => "us-fl",
            Preset::UsOk => "us-ok",
            Preset::RuBusiness => "ru-business",
            Preset::EuBusiness => "eu-business",
        }
    }

    /// Law or convention.
    pub fn kind(self) -> PresetKind {
        match self {
            Preset::UsTcpa | Preset::UsFl | Preset::UsOk => PresetKind::Law,
            Preset::RuBusiness | Preset::EuBusiness => PresetKind::Convention,
        }
    }

    /// Where the rule comes from.
    pub fn source(self) -> &'static str {
        match self {
            Preset::UsTcpa => {
                "47 CFR 64.1200(c)(1): no telephone solicitation before 8 a.m. or after 9 p.m. local time at the called party's location"
            }
            Preset::UsFl => {
                "Fla. Stat. 501.616(6)(a)-(b) (as amended by SB 1120, 2021): 8 a.m. to 8 p.m. at the called person's location, at most 3 calls per 24 hours on the same subject"
            }
            Preset::UsOk => {
                "15 O.S. 775C.4 (Oklahoma Telephone Solicitation Act of 2022): 8 a.m. to 8 p.m. local time, at most 3 per 24 hours on the same subject"
            }
            Preset::RuBusiness => {
                "convention, not law: Russian business hours, weekdays 09:00-20:00 and Saturday 10:00-18:00"
            }
            Preset::EuBusiness => {
                "convention, not law: European business hours, weekdays 09:00-19:00"
            }
        }
    }

    /// A law preset's daily limit, applied to every day.
    pub fn legal_hours(self) -> Option<LocalInterval> {
        match self {
            Preset::UsTcpa => LocalInterval::from_minutes(8 * 60, 21 * 60),
            Preset::UsFl | Preset::UsOk => LocalInterval::from_minutes(8 * 60, 20 * 60),
            Preset::RuBusiness | Preset::EuBusiness => None,
        }
    }

    /// A convention preset's weekly hours.
    pub fn default_hours(self) -> Option<WeeklyHours> {
        let interval = |a: u16, b: u16| {
            LocalInterval::from_minutes(a * 60, b * 60)
                .into_iter()
                .collect::<Vec<_>>()
        };
        let mut week = WeeklyHours::default();
        match self {
            Preset::RuBusiness => {
                week.set(Days::parse("mon-fri").ok()?, &interval(9, 20));
                week.set(Days::parse("sat").ok()?, &interval(10, 18));
            }
            Preset::EuBusiness => week.set(Days::parse("mon-fri").ok()?, &interval(9, 19)),
            Preset::UsTcpa | Preset::UsFl | Preset::UsOk => return None,
        }
        Some(week)
    }

    /// The frequency cap the law adds, if any. Scoped to the purpose: "the same subject matter"
    /// is read broadly, since Herald cannot tell two marketing campaigns' subjects apart.
    pub fn legal_cap(self) -> Option<FrequencyCap> {
        match self {
            Preset::UsFl | Preset::UsOk => Some(FrequencyCap {
                max: 3,
                period: CapPeriod::Rolling(TimeDelta::hours(24)),
                scope: CapScope::Purpose,
            }),
            _ => None,
        }
    }
}

impl FromStr for Preset {
    type Err = PresetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s.trim())
            .ok_or_else(|| PresetError {
                input: s.to_owned(),
            })
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_exactly_one_kind_with_a_source() {
        for preset in Preset::ALL {
            assert_eq!(preset.name().parse::<Preset>().unwrap(), preset);
            assert!(!preset.source().is_empty());
            match preset.kind() {
                PresetKind::Law => {
                    assert!(preset.legal_hours().is_some() && preset.default_hours().is_none())
                }
                PresetKind::Convention => {
                    assert!(preset.legal_hours().is_none() && preset.default_hours().is_some());
                    assert!(preset.source().starts_with("convention, not law"));
                }
            }
        }
        assert!("us-ca".parse::<Preset>().is_err());
    }

    #[test]
    fn florida_and_oklahoma_cap_three_per_day() {
        for preset in [Preset::UsFl, Preset::UsOk] {
            let cap = preset.legal_cap().unwrap();
            assert_eq!(cap.max, 3);
            assert_eq!(cap.period, CapPeriod::Rolling(TimeDelta::hours(24)));
            assert_eq!(preset.legal_hours().unwrap().to_string(), "08:00-20:00");
        }
        assert_eq!(
            Preset::UsTcpa.legal_hours().unwrap().to_string(),
            "08:00-21:00"
        );
        assert!(Preset::UsTcpa.legal_cap().is_none());
    }
}
