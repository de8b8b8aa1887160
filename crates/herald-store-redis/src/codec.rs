//! The Rust side of the values the scripts store: instants as unix milliseconds, the recipient
//! snapshot (`snap:<run>` values) and the delivery state (`dl:<run>` values) as compact JSON with
//! the short field names of [`crate::keys`]. Shared by every module that reads or writes
//! deliveries (the queue and the claims), so both read one format.
//!
//! Decoding never panics: a value that does not read back is [`StoreError::Corrupt`] naming the
//! key (never the value, which may hold a phone or personal attributes).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use herald_core::{Outcome, PhoneNumber, RecipientKey, Region, RunId, SkipReason, TimeZone};
use herald_store::{
    DeliveryKey, RecipientSnapshot, StoreError, StoreResult, Terminal, WaitReason, WorkerId,
};
use redis::Script;
use serde::{Deserialize, Serialize};

/// A script with the prelude and the state helpers of `scripts/state.lua` (`enc_state`,
/// `counter`, `move_count`, `SEP`) in front.
pub(crate) fn script_with_state(body: &str) -> Script {
    crate::scripts::script(&format!("{}\n{body}", include_str!("../scripts/state.lua")))
}

/// Unix milliseconds, rounded down: for instants where earlier is the safe side (`now`, expiry).
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Unix milliseconds, rounded up: a due instant never moves earlier, so a delivery is never
/// looked at before the instant the window logic computed.
pub(crate) fn ms_ceil(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis() + i64::from(!t.timestamp_subsec_nanos().is_multiple_of(1_000_000))
}

/// Reads unix milliseconds back.
pub(crate) fn from_ms(ms: i64, key: &dyn Fn() -> String) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| corrupt(key(), format!("time {ms} ms out of range")))
}

/// Reads unix microseconds back (rate slots, `t` of a state).
#[allow(dead_code)] // For the claims (`claims.rs`), which read slots back.
pub(crate) fn from_us(us: i64, key: &dyn Fn() -> String) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| corrupt(key(), format!("time {us} us out of range")))
}

/// A [`StoreError::Corrupt`]. Keys never contain a full phone number.
pub(crate) fn corrupt(key: String, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key,
        reason: reason.into(),
    }
}

/// The name of one delivery in errors: `dl:<run>/<rcpt>` (without the prefix).
pub(crate) fn delivery_name(run: &str, recipient: &str) -> String {
    format!("dl:{run}/{recipient}")
}

/// Parses a stored delivery key.
pub(crate) fn parse_key(run: &str, recipient: &str) -> StoreResult<DeliveryKey> {
    let bad = |what: &str| corrupt(delivery_name(run, recipient), format!("invalid {what}"));
    Ok(DeliveryKey {
        run: RunId::parse(run).map_err(|_| bad("run id"))?,
        recipient: RecipientKey::parse(recipient).map_err(|_| bad("recipient key"))?,
    })
}

/// Parses a member (`<run>` SEP `<rcpt>`) of a set shared by runs.
pub(crate) fn parse_member(member: &str) -> StoreResult<DeliveryKey> {
    let (run, recipient) = member
        .split_once(crate::keys::SEP)
        .ok_or_else(|| corrupt(format!("member {member}"), "no separator"))?;
    parse_key(run, recipient)
}

/// A recipient snapshot with its planned and expiry instants, as `snap:<run>` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Snap {
    /// The phone, E.164.
    pub(crate) p: String,
    /// The phone's region, so reading it back needs no validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) g: Option<String>,
    /// The zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) z: Option<String>,
    /// The locale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) l: Option<String>,
    /// The country column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) c: Option<String>,
    /// Template attributes (absent when none, which is most rows).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) a: BTreeMap<String, String>,
    /// The audience line.
    pub(crate) n: u64,
    /// The planned instant (ms); absent means the first due instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) s: Option<i64>,
    /// The expiry (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) e: Option<i64>,
}

impl Snap {
    /// Encodes a snapshot with its instants.
    pub(crate) fn new(
        snapshot: &RecipientSnapshot,
        scheduled_at: Option<DateTime<Utc>>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            p: snapshot.phone.expose_e164().to_owned(),
            g: snapshot.phone.region().map(|r| r.as_str().to_owned()),
            z: snapshot.zone.as_ref().map(|z| z.name().to_owned()),
            l: snapshot.locale.clone(),
            c: snapshot.country.map(|c| c.as_str().to_owned()),
            a: snapshot.attributes.clone(),
            n: snapshot.line,
            s: scheduled_at.map(ms),
            e: expires_at.map(ms),
        }
    }

    /// The JSON stored.
    pub(crate) fn encode(&self) -> String {
        // A struct of strings, integers and a string map always serialises.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// Reads a stored snapshot of `key`.
    pub(crate) fn decode(json: &str, key: &dyn Fn() -> String) -> StoreResult<Self> {
        // Not serde's message: it may quote an attribute value, and those are personal data.
        serde_json::from_str(json).map_err(|_| corrupt(key(), "snapshot is not valid JSON"))
    }

    /// The phone, rebuilt without validating again when its region was stored.
    pub(crate) fn phone(&self, key: &dyn Fn() -> String) -> StoreResult<PhoneNumber> {
        match self.g.as_deref().and_then(|r| Region::parse(r).ok()) {
            Some(region) => PhoneNumber::from_validated(&self.p, region)
                .map_err(|_| corrupt(key(), "stored phone does not match its region")),
            None => PhoneNumber::parse(&self.p, None)
                .map_err(|_| corrupt(key(), "stored phone is not a valid E.164 number")),
        }
    }

    /// The recipient snapshot of delivery `delivery`.
    pub(crate) fn recipient(
        &self,
        delivery: &DeliveryKey,
        key: &dyn Fn() -> String,
    ) -> StoreResult<RecipientSnapshot> {
        // Only a recipient's own key is ever queued: duplicates and broken rows start ended.
        let id =
            delivery.recipient.audience_id().cloned().ok_or_else(|| {
                corrupt(key(), "a snapshot under a duplicate's or broken row's key")
            })?;
        let zone = match &self.z {
            Some(name) => Some(
                TimeZone::parse(name)
                    .map_err(|_| corrupt(key(), format!("unknown zone {name:?}")))?,
            ),
            None => None,
        };
        let country = match &self.c {
            Some(code) => Some(
                Region::parse(code)
                    .map_err(|_| corrupt(key(), format!("unknown country {code:?}")))?,
            ),
            None => None,
        };
        Ok(RecipientSnapshot {
            id,
            phone: self.phone(key)?,
            zone,
            locale: self.l.clone(),
            country,
            attributes: self.a.clone(),
            line: self.n,
        })
    }
}

/// A delivery's state as `dl:<run>` holds it (see [`crate::keys`]): every field optional but
/// `s`, so one struct reads the queued, sending and terminal forms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StateJson {
    /// `q`, `s`, or the terminal state's name.
    pub(crate) s: String,
    /// Queued: the due instant (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) d: Option<i64>,
    /// Queued: why it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) w: Option<String>,
    /// Requests made so far.
    #[serde(default)]
    pub(crate) a: u32,
    /// The (last) claim's owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) o: Option<String>,
    /// Sending: the lease's end (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) l: Option<i64>,
    /// The (last) claim's rate slot (µs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) t: Option<i64>,
    /// `1` when the last claim was recovered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) r: Option<u8>,
    /// Terminal: the skip reason or failure code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) x: Option<String>,
    /// Terminal: the detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) m: Option<String>,
    /// Terminal: when it ended (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) f: Option<i64>,
    /// Sending: the recipient's phone, so requeue, finish and recovery reach `hist:<phone>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) p: Option<String>,
    /// `sent`: the rung a status report raised it to (`delivered`, `read`); absent at `sent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) g: Option<String>,
    /// The provider id the index (`mid`) holds for this delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) i: Option<String>,
}

/// A delivery's state, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// Waiting in `due:<run>`.
    Queued {
        /// Due at (ms).
        due: i64,
        /// Why it waits.
        wait: Option<WaitReason>,
    },
    /// Claimed.
    Sending,
    /// Ended.
    Ended(Outcome),
}

impl StateJson {
    /// The queued state, due at `due` ms.
    pub(crate) fn queued(due: i64, wait: Option<WaitReason>, attempts: u32) -> Self {
        Self {
            s: "q".to_owned(),
            d: Some(due),
            w: wait.map(|w| w.as_str().to_owned()),
            a: attempts,
            ..Self::default()
        }
    }

    /// A terminal state ended at `at` ms.
    pub(crate) fn ended(terminal: &Terminal, at: i64) -> Self {
        let (s, x) = terminal_fields(&terminal.outcome);
        Self {
            s: s.to_owned(),
            x,
            m: terminal.detail.clone(),
            f: Some(at),
            ..Self::default()
        }
    }

    /// The JSON stored. Only for values that fit a double's integers (the scripts' encoder,
    /// `enc_state`, writes the same text).
    pub(crate) fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// Reads a stored state of `key`.
    pub(crate) fn decode(json: &str, key: &dyn Fn() -> String) -> StoreResult<Self> {
        serde_json::from_str(json).map_err(|_| corrupt(key(), "delivery state is not valid JSON"))
    }

    /// The state, typed.
    pub(crate) fn state(&self, key: &dyn Fn() -> String) -> StoreResult<State> {
        let bad = |what: &str| corrupt(key(), format!("delivery state: {what}"));
        Ok(match self.s.as_str() {
            "q" => State::Queued {
                due: self.d.ok_or_else(|| bad("queued without a due instant"))?,
                wait: match &self.w {
                    Some(w) => Some(WaitReason::parse(w).ok_or_else(|| bad("unknown wait"))?),
                    None => None,
                },
            },
            "s" => State::Sending,
            "sent" => State::Ended(Outcome::Sent),
            "unknown" => State::Ended(Outcome::Unknown),
            "expired" => State::Ended(Outcome::Expired),
            "failed" => State::Ended(Outcome::Failed {
                code: self.x.clone().ok_or_else(|| bad("failed without a code"))?,
            }),
            "skipped" => State::Ended(Outcome::Skipped(
                self.x
                    .as_deref()
                    .and_then(SkipReason::parse)
                    .ok_or_else(|| bad("skipped without a known reason"))?,
            )),
            other => return Err(bad(&format!("unknown state {other:?}"))),
        })
    }

    /// The last claim's owner, if any.
    #[allow(dead_code)] // For the claims (`claims.rs`): `claims` reads the last owner back.
    pub(crate) fn owner(&self, key: &dyn Fn() -> String) -> StoreResult<Option<WorkerId>> {
        self.o
            .as_deref()
            .map(|o| WorkerId::parse(o).ok_or_else(|| corrupt(key(), "invalid owner")))
            .transpose()
    }
}

/// The state name and reason-or-code of an outcome.
pub(crate) fn terminal_fields(outcome: &Outcome) -> (&'static str, Option<String>) {
    match outcome {
        Outcome::Sent => ("sent", None),
        Outcome::Failed { code } => ("failed", Some(code.clone())),
        Outcome::Unknown => ("unknown", None),
        Outcome::Expired => ("expired", None),
        Outcome::Skipped(reason) => ("skipped", Some(reason.as_str().to_owned())),
    }
}

/// Whether an outcome proves no message reached the provider, so the delivery's entry in the
/// send history must not count toward frequency caps. `sent` and `unknown` keep it.
pub(crate) fn proves_no_send(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Failed { .. } | Outcome::Expired | Outcome::Skipped(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        let key = || String::from("dl:x/y");
        let queued = StateJson::queued(1_795_773_600_000, Some(WaitReason::Spread), 2);
        let back = StateJson::decode(&queued.encode(), &key).unwrap();
        assert_eq!(back, queued);
        assert_eq!(
            back.state(&key).unwrap(),
            State::Queued {
                due: 1_795_773_600_000,
                wait: Some(WaitReason::Spread)
            }
        );
        let ended = StateJson::ended(
            &Terminal {
                outcome: Outcome::Failed {
                    code: "131026".into(),
                },
                detail: None,
            },
            5,
        );
        assert_eq!(
            StateJson::decode(&ended.encode(), &key)
                .unwrap()
                .state(&key)
                .unwrap(),
            State::Ended(Outcome::Failed {
                code: "131026".into()
            })
        );
        assert!(StateJson::decode("{", &key).is_err());
    }
}
