//! Expansion's duplicate check of an audience read in file order: the first row with a given
//! recipient id or phone is the recipient, later ones are duplicates. (`plan` checks phones
//! only: the id set would take another ~19 bytes a recipient, past plan's memory bound, and a
//! repeated id with a different phone is rare; the plan then shows a send the run skips.)

use herald_campaign::audience::{IdHash, IdSet, PhoneSet};
use herald_core::PhoneNumber;

/// Why a row is a duplicate, in words.
pub(crate) const SAME_ID: &str = "the recipient id appears earlier in the audience";
/// Why a row is a duplicate, in words.
pub(crate) const SAME_PHONE: &str = "the phone appears earlier in the audience";

/// Phones and recipient ids seen so far.
pub(crate) struct FirstSeen {
    phones: PhoneSet,
    /// The ids of rows that have an `id` column value, exact to 128 bits ([`IdHash`]). Rows
    /// without one are keyed by their phone, which `phones` already tells apart.
    ids: IdSet,
}

impl FirstSeen {
    /// A check sized for about `rows` rows.
    pub(crate) fn with_capacity(rows: u64) -> Self {
        Self {
            phones: PhoneSet::with_capacity(rows),
            ids: IdSet::with_capacity(rows),
        }
    }

    /// `Ok` for the first row with this given id (`None` for a row without one) and this
    /// phone, otherwise why it is a duplicate. The id is checked first, and a repeated id does
    /// not record its phone.
    pub(crate) fn check(
        &mut self,
        id: Option<IdHash>,
        phone: &PhoneNumber,
    ) -> Result<(), &'static str> {
        if let Some(id) = id
            && !self.ids.insert(id)
        {
            return Err(SAME_ID);
        }
        if !self.phones.insert(phone) {
            return Err(SAME_PHONE);
        }
        Ok(())
    }
}
