//! `POST /v1/campaigns` and `GET /v1/campaigns`.
//!
//! # How an upload is scheduled
//! The receiving process validates the campaign exactly as `herald validate` does
//! ([`herald_campaign::parse_uploaded`]: the same checks, plus `audience.source` omitted or
//! equal to the audience part's file name), then schedules it exactly as `herald scheduler`
//! does a file ([`herald_app::schedule::schedule`]). The audience part is spooled, streaming and
//! bounded by `[admin] max_upload_bytes`, into a private temporary directory (mode 0700, removed
//! when the request ends), which is the directory the campaign is validated against: one code
//! path with the scheduler, and no process ever needs a file another machine wrote (expansion
//! stores every row before the answer is sent; workers read the run's stored campaign text).
//!
//! The run records the campaign part's file name as its source, never the temporary path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::Json;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{Multipart, RawQuery, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use herald_app::schedule::{CampaignFile, schedule};
use herald_campaign::input::MAX_DOCUMENT_BYTES;
use herald_store::{Runs, Stores};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;

use crate::error::ErrorBody;
use crate::{AdminState, ApiError, ApiResult, ErrorCode};

/// One validation diagnostic, as `herald validate` prints it (`file:line:col: message`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Diagnostic {
    /// The part it is about (the campaign part's file name).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl From<herald_campaign::Diagnostic> for Diagnostic {
    fn from(d: herald_campaign::Diagnostic) -> Self {
        Self {
            file: d.file,
            line: d.line,
            column: d.column,
            message: d.message,
        }
    }
}

/// The multipart form of `POST /v1/campaigns` (for the OpenAPI document).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CampaignUpload {
    /// The campaign YAML (its file name labels the diagnostics; default `campaign.yaml`).
    #[schema(format = Binary, content_media_type = "application/yaml")]
    campaign: String,
    /// The audience, CSV or JSONL, with its file name (`.csv`, `.jsonl` or `.ndjson`).
    #[schema(format = Binary)]
    audience: String,
}

/// What `POST /v1/campaigns` scheduled.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignCreated {
    /// The run.
    pub run: String,
    /// The campaign.
    pub campaign: String,
    /// Its sender.
    pub sender: String,
    /// Whether the run had been expanded before (the same campaign and audience posted again:
    /// nothing was added).
    pub already_expanded: bool,
    /// Deliveries added now.
    pub inserted: u64,
    /// The run's deliveries in total.
    pub total: u64,
    /// The run's counts by state and reason after expansion (rows skipped at expansion, such
    /// as duplicates or unparsable phones, are here by reason).
    pub counts: BTreeMap<String, u64>,
}

/// Validates a campaign and its audience and schedules it, as `herald scheduler` does a file.
#[utoipa::path(post, path = "/v1/campaigns", tag = "campaigns", security(("bearer" = [])),
    request_body(content = CampaignUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = CampaignCreated),
        (status = 422, description = "The campaign does not validate (diagnostics with line \
            and column; nothing stored), or its audience.source names something other than the \
            audience part", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AdminState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<CampaignCreated>)> {
    let mut multipart = multipart.map_err(|e| {
        ApiError::bad_request(format!(
            "expected multipart/form-data with `campaign` and `audience` parts: {}",
            e.body_text()
        ))
    })?;
    let dir = tempfile::Builder::new()
        .prefix("herald-upload-")
        .tempdir()
        .map_err(ApiError::internal)?;
    let mut campaign: Option<(String, String)> = None;
    let mut audience: Option<String> = None;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "campaign" if campaign.is_none() => {
                let file = match field.file_name() {
                    Some(file) => plain_file_name(file, "campaign")?,
                    None => "campaign.yaml".to_owned(),
                };
                let text = read_text(field, MAX_DOCUMENT_BYTES).await?;
                campaign = Some((file, text));
            }
            "audience" if audience.is_none() => {
                let file = field.file_name().ok_or_else(|| {
                    ApiError::bad_request(
                        "audience: the part needs a file name (.csv, .jsonl or .ndjson)",
                    )
                })?;
                let file = plain_file_name(file, "audience")?;
                spool(
                    field,
                    &dir.path().join(&file),
                    state.settings.admin.max_upload_bytes,
                )
                .await?;
                audience = Some(file);
            }
            "campaign" | "audience" => {
                return Err(ApiError::bad_request(format!("{name}: given twice")));
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown part `{other}`: expected `campaign` and `audience`"
                )));
            }
        }
    }
    let (file, text) = campaign.ok_or_else(|| ApiError::bad_request("campaign: part missing"))?;
    let audience = audience.ok_or_else(|| ApiError::bad_request("audience: part missing"))?;
    let now = state.clock.now();
    let parsed = herald_campaign::parse_uploaded(&file, dir.path(), &text, &audience, now)
        .map_err(|d| ApiError::invalid_campaign(d.0.into_iter().map(Diagnostic::from).collect()))?;
    let label = PathBuf::from(&file);
    if let Some(d) = herald_app::sender::check(&label, &parsed, &state.settings) {
        return Err(ApiError::invalid_campaign(vec![Diagnostic::from(d)]));
    }
    let upload = CampaignFile::from_parts(label, text, parsed);
    // A recurring campaign fires from a scheduler's campaign directory, where its audience
    // stays for every later fire; an upload's audience is gone when the request ends.
    if upload.is_recurring() {
        return Err(ApiError::new(
            ErrorCode::Invalid,
            format!(
                "{file}: a recurring campaign (schedule.cron) is not accepted over the API: put \
                 it, with its audience, in the directory of `herald scheduler --campaigns DIR` \
                 or `herald serve --campaigns DIR`"
            ),
        ));
    }
    let scheduled = schedule(&state.stores, &upload, &state.settings, now)
        .await
        .map_err(|e| match e {
            // The audience failed expansion (a changed audience for an expanded run, a file
            // over the audience limits): the campaign is not accepted.
            herald_app::AppError::User(message) => ApiError::new(ErrorCode::Invalid, message),
            other => ApiError::from(other),
        })?;
    tracing::info!(run = %scheduled.run, inserted = scheduled.expansion.inserted,
        "campaign scheduled over the API");
    let counts = &scheduled.counts;
    let mut by_state = BTreeMap::from([
        ("queued".to_owned(), counts.queued),
        ("sending".to_owned(), counts.sending),
        ("sent".to_owned(), counts.sent),
        ("unknown".to_owned(), counts.unknown),
        ("expired".to_owned(), counts.expired),
    ]);
    for (code, n) in &counts.failed {
        by_state.insert(format!("failed({code})"), *n);
    }
    for (reason, n) in &counts.skipped {
        by_state.insert(format!("skipped({reason})"), *n);
    }
    Ok((
        StatusCode::CREATED,
        Json(CampaignCreated {
            run: scheduled.run.to_string(),
            campaign: upload.campaign.id.to_string(),
            sender: scheduled.sender,
            already_expanded: scheduled.expansion.already_expanded,
            inserted: scheduled.expansion.inserted,
            total: scheduled.expansion.total,
            counts: by_state,
        }),
    ))
}

/// A campaign and its runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoredCampaign {
    /// The campaign id.
    pub campaign: String,
    /// Its runs, newest first.
    pub runs: Vec<StoredRun>,
}

/// A run as `GET /v1/campaigns` lists it (`GET /v1/runs/{id}` has the rest).
#[derive(Debug, Serialize, ToSchema)]
pub struct StoredRun {
    /// The run.
    pub run: String,
    /// `active`, `paused` or `cancelled`.
    pub state: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The audience size once expansion finished.
    pub total: Option<u64>,
    /// Its sender.
    pub sender: Option<String>,
    /// The campaign file it came from (the uploaded part's name for an API upload).
    pub source: String,
}

/// The stored campaigns of the newest runs (`?limit=` runs, default 100, at most 1000), each
/// with those of its runs, newest campaign first. Never the campaign text (a list stays small;
/// the run's own record has it).
#[utoipa::path(get, path = "/v1/campaigns", tag = "campaigns", security(("bearer" = [])),
    params(("limit" = Option<usize>, Query, description = "How many runs, newest first \
        (default 100, at most 1000)")),
    responses((status = 200, body = Vec<StoredCampaign>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AdminState>,
    query: RawQuery,
) -> ApiResult<Json<Vec<StoredCampaign>>> {
    let limit = crate::limit::limit(&query)?;
    let mut records = state.stores.runs().runs().await?;
    records.sort_by_key(|record| std::cmp::Reverse(record.created_at));
    records.truncate(limit);
    let mut by_campaign: BTreeMap<String, Vec<StoredRun>> = BTreeMap::new();
    for record in records {
        by_campaign
            .entry(record.run.campaign.to_string())
            .or_default()
            .push(StoredRun {
                run: record.run.run.to_string(),
                state: record.state.as_str().to_owned(),
                created_at: record.created_at,
                total: record.total,
                sender: record.run.sender,
                source: record.run.source,
            });
    }
    let mut campaigns: Vec<StoredCampaign> = by_campaign
        .into_iter()
        .map(|(campaign, mut runs)| {
            runs.sort_by_key(|run| std::cmp::Reverse(run.created_at));
            StoredCampaign { campaign, runs }
        })
        .collect();
    // Newest first: by each campaign's newest run.
    campaigns.sort_by_key(|c| std::cmp::Reverse(c.runs.first().map(|run| run.created_at)));
    Ok(Json(campaigns))
}

/// A part's file name as a plain name (no directory, no `..`): it becomes a file in the
/// upload's private directory and the name `audience.source` must match.
fn plain_file_name(name: &str, part: &str) -> ApiResult<String> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control);
    if plain {
        Ok(name.to_owned())
    } else {
        Err(ApiError::bad_request(format!(
            "{part}: the file name must be a plain name, without a directory"
        )))
    }
}

async fn read_text(mut field: Field<'_>, limit: u64) -> ApiResult<String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("campaign: larger than the limit of {limit} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| ApiError::bad_request("campaign: not UTF-8"))
}

/// Writes the part to `path` (a new file), refusing it past `limit` bytes.
async fn spool(mut field: Field<'_>, path: &Path, limit: u64) -> ApiResult<()> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await
        .map_err(ApiError::internal)?;
    let mut written = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        written += chunk.len() as u64;
        if written > limit {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "audience: larger than the limit of {limit} bytes (`[admin] max_upload_bytes`)"
                ),
            ));
        }
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    file.flush().await.map_err(ApiError::internal)?;
    Ok(())
}

fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiError {
    let status = error.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorCode::PayloadTooLarge, error.body_text())
    } else {
        ApiError::bad_request(format!("invalid multipart body: {}", error.body_text()))
    }
}
