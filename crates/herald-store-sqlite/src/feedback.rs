//! [`Feedback`] on SQLite: statuses (`queries/status.rs`) and tags (`queries/tags.rs`).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use herald_core::PhoneNumber;
use herald_store::{
    Feedback, KEPT_STATUS_TTL, MAX_TAG_BYTES, SentMessage, StatusReport, StatusVerdict, StoreError,
    StoreResult,
};

use crate::codec::{duration_ms, millis};
use crate::db::Db;
use crate::queries::{self, status, tags};

/// [`Feedback`] on SQLite: provider statuses on the delivery rows, early reports and tags in
/// their own tables.
pub struct SqliteFeedback {
    db: Db,
}

impl SqliteFeedback {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }
}

/// A tag the port accepts: non-empty, at most [`MAX_TAG_BYTES`], no control character. The
/// error names the field and never repeats the text (it came from a stranger's reply).
fn check_tag(tag: &str) -> StoreResult<()> {
    let problem = if tag.is_empty() {
        "is empty".to_owned()
    } else if tag.len() > MAX_TAG_BYTES {
        format!("is longer than {MAX_TAG_BYTES} bytes")
    } else if tag.chars().any(char::is_control) {
        "holds a control character".to_owned()
    } else {
        return Ok(());
    };
    Err(StoreError::Conflict(format!("tag {problem}")))
}

impl Feedback for SqliteFeedback {
    async fn record_status(
        &self,
        report: &StatusReport,
        now: DateTime<Utc>,
    ) -> StoreResult<StatusVerdict> {
        let report = report.clone();
        let (now, ttl) = (millis(now), duration_ms(KEPT_STATUS_TTL));
        self.db
            .call(move |conn| status::record_status(conn, &report, now, ttl))
            .await
    }

    async fn message(&self, provider_id: &str) -> StoreResult<Option<SentMessage>> {
        let provider_id = provider_id.to_owned();
        self.db
            .call(move |conn| status::message(conn, &provider_id))
            .await
    }

    async fn add_tag(
        &self,
        phone: &PhoneNumber,
        tag: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        check_tag(tag)?;
        let (phone, tag) = (phone.expose_e164().to_owned(), tag.to_owned());
        self.db
            .call(move |conn| tags::add_tag(conn, &phone, &tag, millis(now)))
            .await
    }

    async fn tags_for(&self, phones: &[PhoneNumber]) -> StoreResult<Vec<BTreeSet<String>>> {
        let phones: Vec<String> = phones.iter().map(|p| p.expose_e164().to_owned()).collect();
        if phones.is_empty() {
            return Ok(Vec::new());
        }
        self.db
            .call(move |conn| {
                queries::in_one_read(conn, |conn| {
                    phones.iter().map(|phone| tags::tags(conn, phone)).collect()
                })
            })
            .await
    }
}
