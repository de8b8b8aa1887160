//! Expansion's duplicate check of an audience read in file order: the first row with a given
//! recipient id or phone is the recipient, later ones are duplicates. (`plan` checks phones
//! only: an id set would take another ~9 bytes a recipient, past plan's memory bound, and a
//! repeated id with a different phone is rare; the plan then shows a send the run skips.)

use std::collections::HashSet;
use std::hash::BuildHasherDefault;

use herald_campaign::audience::PhoneSet;
use herald_core::PhoneNumber;

/// Why a row is a duplicate, in words.
pub(crate) const SAME_ID: &str = "the recipient id appears earlier in the audience";
/// Why a row is a duplicate, in words.
pub(crate) const SAME_PHONE: &str = "the phone appears earlier in the audience";

/// Phones and recipient ids seen so far.
pub(crate) struct FirstSeen {
    phones: PhoneSet,
    /// Recipient ids seen, as 64-bit hashes (8 bytes a recipient instead of the id's text). A
    /// collision, about one in 10^7 campaigns of a million, skips a recipient as a duplicate:
    /// it can only withhold a message, never send one twice.
    ids: HashSet<u64, BuildHasherDefault<Prehashed>>,
}

impl FirstSeen {
    /// A check sized for about `rows` rows.
    pub(crate) fn with_capacity(rows: u64) -> Self {
        Self {
            phones: PhoneSet::with_capacity(rows),
            ids: HashSet::default(),
        }
    }

    /// `Ok` for the first row with this id (by [`id_hash`]) and this phone, otherwise why it is
    /// a duplicate. The id is checked first, and a repeated id does not record its phone.
    pub(crate) fn check(&mut self, id_hash: u64, phone: &PhoneNumber) -> Result<(), &'static str> {
        if !self.ids.insert(id_hash) {
            return Err(SAME_ID);
        }
        if !self.phones.insert(phone) {
            return Err(SAME_PHONE);
        }
        Ok(())
    }
}

/// The hash a recipient id is remembered by.
pub(crate) fn id_hash(id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish()
}

/// The id set's keys are already 64-bit hashes: hashing them again (SipHash, the default) cost
/// more than the set operation itself.
#[derive(Default)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `HashSet<u64>`; anything else is folded in, not dropped.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}
