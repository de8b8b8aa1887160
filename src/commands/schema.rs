//! `herald schema`: the JSON Schema committed as campaigns/schema.json.

use std::io::Write;

use crate::commands::Failure;

pub(crate) fn run() -> Result<(), Failure> {
    std::io::stdout().write_all(herald_campaign::schema::campaign_schema_text().as_bytes())?;
    Ok(())
}
