//! `herald schema`: the JSON Schema committed as campaigns/schema.json.

use crate::commands::Failure;
use crate::output::Output;

pub(crate) fn run(out: &mut Output) -> Result<(), Failure> {
    out.write_all(herald_campaign::schema::campaign_schema_text().as_bytes())?;
    Ok(())
}
