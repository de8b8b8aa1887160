//! IANA time zones and the zones of each country.
//!
//! The country → zones table is the tz database's `zone.tab`, kept in `data/zone.tab` with the
//! release it came from (2025b, the release chrono-tz 0.10.4 compiles in, so both agree on which
//! names exist). `zone.tab` rather than `zone1970.tab`: the latter lists zones shared by several
//! countries once, under all of them, and maps some countries to zones named after a neighbour,
//! which is right for clocks but useless for "every zone a +7 number might be in".

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use chrono::{DateTime, NaiveDateTime, Offset, TimeZone as _, Utc};
use chrono_tz::Tz;

use crate::region::Region;

/// The tz database release of `data/zone.tab`.
pub const TZDATA_VERSION: &str = "2025b";

const ZONE_TAB: &str = include_str!("../data/zone.tab");

/// Why a time zone name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {input:?}: expected an IANA name such as Europe/Moscow")]
pub struct TimeZoneError {
    /// The rejected input.
    pub input: String,
}

/// An IANA time zone.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeZone(Tz);

impl TimeZone {
    /// Parses an IANA name (`Asia/Kathmandu`). Case must match, as in the tz database.
    pub fn parse(input: &str) -> Result<Self, TimeZoneError> {
        Tz::from_str(input.trim())
            .map(Self)
            .map_err(|_| TimeZoneError {
                input: input.to_owned(),
            })
    }

    /// The IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The chrono-tz zone, for adapters that format local times.
    pub fn tz(&self) -> Tz {
        self.0
    }

    /// The wall-clock reading at `instant`.
    pub fn local(&self, instant: DateTime<Utc>) -> NaiveDateTime {
        instant.with_timezone(&self.0).naive_local()
    }

    /// The zone's offset from UTC at `instant`, in seconds east.
    pub fn offset_seconds(&self, instant: DateTime<Utc>) -> i32 {
        self.0
            .offset_from_utc_datetime(&instant.naive_utc())
            .fix()
            .local_minus_utc()
    }

    /// The zones of `region` per `zone.tab`; empty for a country the table does not list.
    /// libphonenumber knows a few regions zone.tab lacks; they borrow the zones of the country
    /// whose clocks they keep (Kosovo: Serbia; Ascension and Tristan da Cunha: Saint Helena).
    pub fn of_region(region: Region) -> &'static [TimeZone] {
        let region = match region.as_str() {
            "XK" => Region::parse("RS").unwrap_or(region),
            "AC" | "TA" => Region::parse("SH").unwrap_or(region),
            _ => region,
        };
        region_table()
            .get(&region)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

impl FromStr for TimeZone {
    type Err = TimeZoneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimeZone({})", self.name())
    }
}

impl PartialOrd for TimeZone {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TimeZone {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name().cmp(other.name())
    }
}

fn region_table() -> &'static BTreeMap<Region, Vec<TimeZone>> {
    static TABLE: OnceLock<BTreeMap<Region, Vec<TimeZone>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table: BTreeMap<Region, Vec<TimeZone>> = BTreeMap::new();
        for line in ZONE_TAB
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let mut columns = line.split('\t');
            let (Some(code), Some(_coordinates), Some(name)) =
                (columns.next(), columns.next(), columns.next())
            else {
                continue;
            };
            // A name chrono-tz lacks would mean the two tzdata releases diverged; the test
            // `every_zone_tab_name_is_known` catches that, so skipping here is safe.
            if let (Ok(region), Ok(zone)) = (Region::parse(code), TimeZone::parse(name)) {
                table.entry(region).or_default().push(zone);
            }
        }
        table
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iana_names_and_rejects_others() {
        assert_eq!(
            TimeZone::parse("Asia/Kathmandu").unwrap().name(),
            "Asia/Kathmandu"
        );
        for bad in ["", "Mars/Olympus", "GMT+25", "europe/moscow"] {
            assert!(TimeZone::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn every_zone_tab_name_is_known() {
        let listed = ZONE_TAB
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .count();
        let parsed: usize = region_table().values().map(Vec::len).sum();
        assert_eq!(listed, parsed);
        assert!(listed > 300);
    }

    #[test]
    fn regions_map_to_their_zones() {
        let ru = TimeZone::of_region(Region::parse("RU").unwrap());
        assert_eq!(ru.len(), 26);
        assert!(ru.iter().any(|z| z.name() == "Asia/Kamchatka"));
        assert!(ru.iter().any(|z| z.name() == "Europe/Kaliningrad"));
        let us = TimeZone::of_region(Region::parse("US").unwrap());
        assert!(us.iter().any(|z| z.name() == "Pacific/Honolulu"));
        assert!(!us.iter().any(|z| z.name() == "America/Toronto"));
        assert_eq!(TimeZone::of_region(Region::parse("NP").unwrap()).len(), 1);
        assert!(TimeZone::of_region(Region::parse("ZZ").unwrap()).is_empty());
        assert_eq!(
            TimeZone::of_region(Region::parse("XK").unwrap())[0].name(),
            "Europe/Belgrade"
        );
    }

    #[test]
    fn offsets_include_odd_minutes() {
        let kathmandu = TimeZone::parse("Asia/Kathmandu").unwrap();
        let t = DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(kathmandu.offset_seconds(t), 5 * 3600 + 45 * 60);
    }
}
