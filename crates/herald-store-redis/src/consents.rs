//! The consent port: `consent:<channel>:<phone>`, a hash from an event's identity (kind, scope,
//! instant, source; proof is not part of it) to the event as JSON with its recorded instant.
//! `HLEN` is the number of events a claim compares ([`herald_store::ConsentSeen`]).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use herald_core::{ConsentEvent, ConsentKind, PhoneNumber, RecordedConsent, Scope};
use herald_store::{Consents, StoreResult, StoredConsent};
use redis::Script;
use serde::{Deserialize, Serialize};

use crate::codec::{corrupt, from_ms, ms};
use crate::conn::{Conn, map_err};
use crate::keys::SEP;
use crate::scripts::{invocation, run as run_script, script};

static APPEND: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("../scripts/append_consent.lua")));

/// The consent log in Redis (`consent:<channel>:<phone>`).
#[derive(Clone)]
pub struct RedisConsents {
    conn: Conn,
}

impl RedisConsents {
    pub(crate) fn new(conn: Conn) -> Self {
        Self { conn }
    }
}

/// An event as stored.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    /// Recorded (ms), written by the script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<i64>,
    /// `opt_in` or `opt_out`.
    k: String,
    /// The scope.
    c: String,
    /// When it happened (ms).
    o: i64,
    /// Its source.
    s: String,
    /// Its proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<String>,
}

fn kind_name(kind: ConsentKind) -> &'static str {
    match kind {
        ConsentKind::OptIn => "opt_in",
        ConsentKind::OptOut => "opt_out",
    }
}

/// The identity an event is stored under: the same event appended again lands on it.
fn identity(event: &ConsentEvent) -> String {
    format!(
        "{}{SEP}{}{SEP}{}{SEP}{}",
        kind_name(event.kind),
        event.scope.as_str(),
        ms(event.occurred_at),
        event.source
    )
}

/// Where an event sorts: when it happened, then kind, scope and source, the order of SQLite's
/// primary key.
fn order(event: &ConsentEvent) -> (DateTime<Utc>, &'static str, &'static str, &str) {
    (
        event.occurred_at,
        kind_name(event.kind),
        event.scope.as_str(),
        &event.source,
    )
}

/// Decodes one phone's hash values, ordered as they happened (ties as SQLite orders them).
fn decode(
    channel: &str,
    phone: &PhoneNumber,
    values: Vec<String>,
) -> StoreResult<Vec<RecordedConsent>> {
    // The masked phone: a corrupt-data error must not print the number.
    let key = || format!("consent:{channel}:{}", phone.masked());
    let mut events = values
        .iter()
        .map(|json| {
            let stored: Stored = serde_json::from_str(json)
                .map_err(|_| corrupt(key(), "an event is not valid JSON"))?;
            let event =
                ConsentEvent {
                    kind: stored.k.parse().map_err(|_| {
                        corrupt(key(), format!("unknown consent kind {:?}", stored.k))
                    })?,
                    scope: stored.c.parse::<Scope>().map_err(|_| {
                        corrupt(key(), format!("unknown consent scope {:?}", stored.c))
                    })?,
                    occurred_at: from_ms(stored.o, &key)?,
                    source: stored.s,
                    proof: stored.p,
                };
            let recorded = stored
                .r
                .ok_or_else(|| corrupt(key(), "an event without `r`"))?;
            Ok(RecordedConsent {
                recorded_at: from_ms(recorded, &key)?,
                event,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    events.sort_by(|a, b| order(&a.event).cmp(&order(&b.event)));
    Ok(events)
}

impl Consents for RedisConsents {
    async fn append(&self, events: &[StoredConsent], now: DateTime<Utc>) -> StoreResult<u64> {
        if events.is_empty() {
            return Ok(0);
        }
        let mut call = invocation(&self.conn, &APPEND);
        call.arg(ms(now));
        for stored in events {
            let event = &stored.event;
            let value = Stored {
                r: None,
                k: kind_name(event.kind).to_owned(),
                c: event.scope.as_str().to_owned(),
                o: ms(event.occurred_at),
                s: event.source.clone(),
                p: event.proof.clone(),
            };
            call.arg(format!("{}:{}", stored.channel, stored.phone.expose_e164()))
                .arg(identity(event))
                .arg(serde_json::to_string(&value).unwrap_or_else(|_| String::from("{}")));
        }
        let new: u64 = run_script(&self.conn, &call).await?;
        Ok(new)
    }

    async fn events(
        &self,
        channel: &str,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<RecordedConsent>> {
        let mut all = self
            .events_for(channel, std::slice::from_ref(phone))
            .await?;
        Ok(all.pop().unwrap_or_default())
    }

    async fn events_for(
        &self,
        channel: &str,
        phones: &[PhoneNumber],
    ) -> StoreResult<Vec<Vec<RecordedConsent>>> {
        if phones.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for phone in phones {
            pipe.cmd("HVALS")
                .arg(self.conn.keys.consent(channel, phone.expose_e164()));
        }
        let mut manager = self.conn.manager.clone();
        let values: Vec<Vec<String>> = pipe.query_async(&mut manager).await.map_err(map_err)?;
        phones
            .iter()
            .zip(values)
            .map(|(phone, values)| decode(channel, phone, values))
            .collect()
    }
}
