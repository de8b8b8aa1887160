//! `where: { tags }` against the tags stored for a phone (button replies, `on_reply: { tag }`)
//! as well as the audience row's: a row whose file tags lack some wanted tag is in when the
//! phone's stored tags hold the rest. Looked up with one `tags_for` per batch, before the
//! duplicate check, so the rows stay in file order and the store sees one query per 5,000
//! rows. A tag stored after its batch was expanded does not add the recipient to that run
//! (expansion is a snapshot); it counts for the next run.

use herald_campaign::audience::Segment;
use herald_store::{Feedback, StoreError, Stores};

use super::rows::Candidate;

/// Lets in (clears `missing_tags` of) every waiting row whose stored tags cover what its row
/// lacks, and turns the others [`Candidate::Outside`].
pub(super) async fn resolve<S: Stores>(
    stores: &S,
    candidates: &mut [Candidate],
) -> Result<(), StoreError> {
    let mut waiting = Vec::new();
    let mut phones = Vec::new();
    for (index, candidate) in candidates.iter().enumerate() {
        if let Candidate::Recipient {
            missing_tags,
            first,
            ..
        } = candidate
            && !missing_tags.is_empty()
            && let Some(snapshot) = &first.recipient
        {
            waiting.push(index);
            phones.push(snapshot.phone.clone());
        }
    }
    if waiting.is_empty() {
        return Ok(());
    }
    let stored = stores.feedback().tags_for(&phones).await?;
    if stored.len() != waiting.len() {
        return Err(StoreError::Corrupt {
            key: "tags_for".to_owned(),
            reason: format!("{} answers for {} phones", stored.len(), waiting.len()),
        });
    }
    for (index, stored) in waiting.into_iter().zip(stored) {
        let candidate = &mut candidates[index];
        if let Candidate::Recipient { missing_tags, .. } = candidate {
            if Segment::tags_cover(missing_tags, &stored) {
                missing_tags.clear();
            } else {
                *candidate = Candidate::Outside;
            }
        }
    }
    Ok(())
}
