//! How port values are written to and read from columns: times as unix seconds, outcomes as a
//! state name plus reason or code, the recipient snapshot as plain columns and a JSON object.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use herald_core::{
    AudienceId, Outcome, PhoneNumber, Purpose, RecipientKey, Region, RunId, TimeZone,
};
use herald_store::{DeliveryKey, RecipientSnapshot, StoreError, StoreResult, Terminal};

/// Unix seconds, rounded down: for instants where earlier is the safe side (`now`, expiry).
pub(crate) fn secs(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

/// Unix seconds, rounded up: a due instant never moves earlier, so a delivery is never looked at
/// before the instant the window logic computed.
pub(crate) fn secs_ceil(t: DateTime<Utc>) -> i64 {
    t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0)
}

/// Unix milliseconds (store time: leases, throttles, blocks, the tier window).
pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Unix microseconds (rate slots).
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Reads unix milliseconds back.
pub(crate) fn from_millis(ms: i64, key: &dyn Fn() -> String) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| corrupt(key(), format!("time {ms} ms out of range")))
}

/// Reads unix microseconds back.
pub(crate) fn from_micros(us: i64, key: &dyn Fn() -> String) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| corrupt(key(), format!("time {us} us out of range")))
}

/// A duration in whole milliseconds, saturating (a lease, a hold).
pub(crate) fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A duration in whole microseconds, saturating (a horizon).
pub(crate) fn duration_us(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Reads unix seconds back.
pub(crate) fn instant(secs: i64, key: &dyn Fn() -> String) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| corrupt(key(), format!("time {secs} out of range")))
}

/// A [`StoreError::Corrupt`]. Keys never contain a full phone number.
pub(crate) fn corrupt(key: String, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key,
        reason: reason.into(),
    }
}

/// The key of a delivery in errors.
pub(crate) fn delivery_key(run: &str, recipient: &str) -> String {
    format!("deliveries/{run}/{recipient}")
}

/// Parses a stored delivery key.
pub(crate) fn parse_key(run: &str, recipient: &str) -> StoreResult<DeliveryKey> {
    let bad = |what: &str| corrupt(delivery_key(run, recipient), format!("invalid {what}"));
    Ok(DeliveryKey {
        run: RunId::parse(run).map_err(|_| bad("run id"))?,
        recipient: RecipientKey::parse(recipient).map_err(|_| bad("recipient key"))?,
    })
}

/// The columns of a terminal outcome: state, skip reason, failure code.
pub(crate) fn terminal_columns(
    terminal: &Terminal,
) -> (&'static str, Option<&'static str>, Option<String>) {
    match &terminal.outcome {
        Outcome::Sent => ("sent", None, None),
        Outcome::Failed { code } => ("failed", None, Some(code.clone())),
        Outcome::Unknown => ("unknown", None, None),
        Outcome::Expired => ("expired", None, None),
        Outcome::Skipped(reason) => ("skipped", Some(reason.as_str()), None),
    }
}

/// Whether an outcome proves no message reached the provider, so the delivery's entry in the send
/// history must not count toward frequency caps. `sent` and `unknown` keep it.
pub(crate) fn proves_no_send(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Failed { .. } | Outcome::Expired | Outcome::Skipped(_)
    )
}

/// Reads a purpose back.
pub(crate) fn purpose(name: &str, key: &dyn Fn() -> String) -> StoreResult<Purpose> {
    name.parse()
        .map_err(|_| corrupt(key(), format!("unknown purpose {name:?}")))
}

/// Reads an E.164 phone back. The reason never repeats the stored text: it may be a phone.
pub(crate) fn phone(e164: &str, key: &dyn Fn() -> String) -> StoreResult<PhoneNumber> {
    PhoneNumber::parse(e164, None)
        .map_err(|_| corrupt(key(), "stored phone is not a valid E.164 number"))
}

/// The snapshot as columns.
pub(crate) struct SnapshotColumns {
    pub(crate) phone: String,
    /// The phone's region, so reading it back needs no validation.
    pub(crate) phone_region: Option<&'static str>,
    pub(crate) zone: Option<&'static str>,
    pub(crate) locale: Option<String>,
    pub(crate) country: Option<String>,
    /// `None` for no attributes, which is most rows of a plain audience and costs nothing.
    pub(crate) attributes: Option<String>,
    pub(crate) line: i64,
}

impl SnapshotColumns {
    /// Encodes a snapshot.
    pub(crate) fn new(snapshot: &RecipientSnapshot) -> Self {
        Self {
            phone: snapshot.phone.expose_e164().to_owned(),
            phone_region: snapshot.phone.region().map(region_name),
            zone: snapshot.zone.as_ref().map(TimeZone::name),
            locale: snapshot.locale.clone(),
            country: snapshot.country.map(|c| c.as_str().to_owned()),
            attributes: (!snapshot.attributes.is_empty())
                .then(|| encode_attributes(&snapshot.attributes)),
            line: i64::try_from(snapshot.line).unwrap_or(i64::MAX),
        }
    }
}

fn encode_attributes(attributes: &BTreeMap<String, String>) -> String {
    // A map of strings to strings always serialises; the fallback is unreachable in practice.
    serde_json::to_string(attributes).unwrap_or_else(|_| String::from("{}"))
}

/// The snapshot columns as read from a row, in table order.
pub(crate) struct StoredSnapshot {
    pub(crate) phone: String,
    pub(crate) phone_region: Option<String>,
    pub(crate) zone: Option<String>,
    pub(crate) locale: Option<String>,
    pub(crate) country: Option<String>,
    pub(crate) attributes: Option<String>,
    pub(crate) line: i64,
}

impl StoredSnapshot {
    /// Decodes the snapshot of `id`.
    pub(crate) fn decode(
        self,
        id: AudienceId,
        key: &dyn Fn() -> String,
    ) -> StoreResult<RecipientSnapshot> {
        let zone = match self.zone {
            Some(name) => Some(
                TimeZone::parse(&name)
                    .map_err(|_| corrupt(key(), format!("unknown zone {name:?}")))?,
            ),
            None => None,
        };
        let country = match self.country {
            Some(code) => Some(
                Region::parse(&code)
                    .map_err(|_| corrupt(key(), format!("unknown country {code:?}")))?,
            ),
            None => None,
        };
        let attributes = match self.attributes {
            Some(json) => serde_json::from_str(&json)
                // Not serde's message: it may quote an attribute value, and those are personal data.
                .map_err(|_| corrupt(key(), "attributes are not a JSON object of strings"))?,
            None => BTreeMap::new(),
        };
        Ok(RecipientSnapshot {
            id,
            phone: match self
                .phone_region
                .as_deref()
                .and_then(|r| Region::parse(r).ok())
            {
                Some(region) => PhoneNumber::from_validated(&self.phone, region)
                    .map_err(|_| corrupt(key(), "stored phone does not match its region"))?,
                None => phone(&self.phone, key)?,
            },
            zone,
            locale: self.locale,
            country,
            attributes,
            line: u64::try_from(self.line).map_err(|_| corrupt(key(), "negative line"))?,
        })
    }
}

/// A region's code as a `'static` string, for a bound parameter (regions are two ASCII letters,
/// so the set of distinct values is small and interned once each).
fn region_name(region: Region) -> &'static str {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashMap<Region, &'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    names
        .entry(region)
        .or_insert_with(|| Box::leak(region.as_str().to_owned().into_boxed_str()))
}
