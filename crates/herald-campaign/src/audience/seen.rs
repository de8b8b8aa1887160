//! Duplicate phones and ids within one audience.
//!
//! The same person is often in a file twice (two CRM records, a merge of two exports); they must
//! get one message, so the engine skips every later row with a phone or an id it has already
//! seen. This is the one piece of audience state that grows with the file, so it is kept small:
//! a phone is stored as a `u64` in an open-addressing table filled to 85%, about 9.4 bytes per
//! phone, where a `HashSet<String>` would take over 50 and even a `HashSet<u64>`, growing by
//! powers of two, up to ~19. An id is stored the same way as 128 bits of its SHA-256 (about 19
//! bytes an id, whatever its length).

use std::fmt;

use herald_core::{PhoneNumber, RecipientId};
use sha2::{Digest, Sha256};

/// Fill the table to this fraction when the expected size is known.
const TARGET_LOAD: (u128, u128) = (17, 20);
/// Grow when an insert would fill the table beyond this fraction: past 90% linear probing slows
/// down sharply.
const MAX_LOAD: (u64, u64) = (9, 10);

/// The set of phones seen so far in one audience, at most ~9-10 bytes per phone.
///
/// The key of a phone is its E.164 digits read as a number. E.164 allows at most 15 digits, well
/// within a `u64` (19), and no country code starts with 0, so the key is exact: two phones share
/// a key only if they are the same number, and there are no false duplicates to worry about.
pub struct PhoneSet {
    table: Table<u64>,
}

impl PhoneSet {
    /// A set sized for `expected` phones (usually [`count_rows`](super::count_rows)). A wrong
    /// estimate is safe: the table grows by half whenever it gets too full.
    pub fn with_capacity(expected: u64) -> Self {
        Self {
            table: Table::with_capacity(expected),
        }
    }

    /// Adds `phone`; true if it was not in the set yet.
    pub fn insert(&mut self, phone: &PhoneNumber) -> bool {
        self.table.insert(key(phone))
    }

    /// The number of distinct phones.
    pub fn len(&self) -> u64 {
        self.table.len
    }

    /// Whether no phone has been added.
    pub fn is_empty(&self) -> bool {
        self.table.len == 0
    }

    /// The memory the table holds, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.table.heap_bytes()
    }
}

impl fmt::Debug for PhoneSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the phones themselves: this may end up in a log.
        f.debug_struct("PhoneSet")
            .field("len", &self.table.len)
            .field("slots", &self.table.slots.len())
            .finish()
    }
}

/// A recipient id as [`IdSet`] keeps it: the first 128 bits of the SHA-256 of its text.
///
/// Not a 64-bit hash: at 64 bits a run of ten million ids has about one chance in 370,000 that
/// two share a hash (the second recipient would be skipped as a duplicate), and a fast 64-bit
/// hash can be made to collide on purpose by whoever writes the ids. At 128 bits of SHA-256 the
/// chance is below 10^-24, and no one can craft two ids that meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdHash([u8; 16]);

impl IdHash {
    /// The hash of `id`. Costly enough (~0.1 µs) to be taken on the threads that read rows.
    pub fn of(id: &RecipientId) -> Self {
        let digest = Sha256::digest(id.as_str().as_bytes());
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        // Bytes rather than a `u128`: byte-aligned, it adds 17 bytes to a row in flight
        // instead of 32.
        Self(first)
    }
}

/// The set of recipient ids seen so far in one audience, by [`IdHash`]: about 19 bytes an id.
/// The table is made on the first insert, so an audience without an `id` column (its rows are
/// told apart by phone) costs nothing.
pub struct IdSet {
    expected: u64,
    table: Option<Table<u128>>,
    /// Whether the hash 0 was added: 0 marks an empty slot in the table, so it is kept apart.
    zero: bool,
}

impl IdSet {
    /// A set to be sized for `expected` ids when the first one arrives.
    pub fn with_capacity(expected: u64) -> Self {
        Self {
            expected,
            table: None,
            zero: false,
        }
    }

    /// Adds the id; true if it was not in the set yet.
    pub fn insert(&mut self, id: IdHash) -> bool {
        let key = u128::from_le_bytes(id.0);
        if key == 0 {
            return !std::mem::replace(&mut self.zero, true);
        }
        let expected = self.expected;
        self.table
            .get_or_insert_with(|| Table::with_capacity(expected))
            .insert(key)
    }

    /// The number of distinct ids.
    pub fn len(&self) -> u64 {
        self.table.as_ref().map_or(0, |t| t.len) + u64::from(self.zero)
    }

    /// Whether no id has been added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The memory the table holds, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.table.as_ref().map_or(0, Table::heap_bytes)
    }
}

impl fmt::Debug for IdSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdSet")
            .field("len", &self.len())
            .field("slots", &self.table.as_ref().map_or(0, |t| t.slots.len()))
            .finish()
    }
}

/// A key an open-addressing [`Table`] can hold.
trait Slot: Copy + Eq {
    /// Marks an empty slot; never inserted.
    const EMPTY: Self;
    /// The slot of `slots` a key starts probing at.
    fn home(self, slots: usize) -> usize;
}

impl Slot for u64 {
    /// No phone's key is 0: E.164 numbers start with a non-zero country code.
    const EMPTY: Self = 0;

    /// Phone keys are far from uniform (long runs of consecutive numbers with a shared prefix),
    /// so they are mixed first: an xor-shift folds the high digits into the low bits, and the
    /// Fibonacci multiplier spreads the low bits up to the high ones, which are the ones the
    /// multiply-high reduction uses. Multiply-high maps onto any table size, so the table need
    /// not be a power of two and can grow by 1.5x.
    fn home(self, slots: usize) -> usize {
        let hash = (self ^ (self >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((u128::from(hash) * slots as u128) >> 64) as usize
    }
}

impl Slot for u128 {
    const EMPTY: Self = 0;

    /// Id keys are SHA-256 bits, uniform already: multiply-high of the low half.
    fn home(self, slots: usize) -> usize {
        ((u128::from(self as u64) * slots as u128) >> 64) as usize
    }
}

/// An open-addressing set with linear probing, sized by an estimate and grown by half.
struct Table<K> {
    slots: Box<[K]>,
    len: u64,
}

impl<K: Slot> Table<K> {
    fn with_capacity(expected: u64) -> Self {
        let (numerator, denominator) = TARGET_LOAD;
        let slots = (u128::from(expected) * denominator)
            .div_ceil(numerator)
            .max(8);
        Self {
            slots: vec![K::EMPTY; usize::try_from(slots).unwrap_or(usize::MAX)].into_boxed_slice(),
            len: 0,
        }
    }

    fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }

    /// Adds `key` (never [`Slot::EMPTY`]); true if it was not in the table yet.
    fn insert(&mut self, key: K) -> bool {
        let mut slot = match self.find(key) {
            Ok(_) => return false,
            Err(empty) => empty,
        };
        let (numerator, denominator) = MAX_LOAD;
        if (self.len + 1) * denominator > self.slots.len() as u64 * numerator {
            self.grow();
            // Still absent, so this is `Err`; the slot moved with the new table size.
            slot = self.find(key).unwrap_or_else(|empty| empty);
        }
        self.slots[slot] = key;
        self.len += 1;
        true
    }

    /// `Ok(index)` of `key`, or `Err(index)` of the empty slot where it would go.
    fn find(&self, key: K) -> Result<usize, usize> {
        let mut index = key.home(self.slots.len());
        loop {
            match self.slots[index] {
                empty if empty == K::EMPTY => return Err(index),
                stored if stored == key => return Ok(index),
                _ => {
                    index = if index + 1 == self.slots.len() {
                        0
                    } else {
                        index + 1
                    }
                }
            }
        }
    }

    /// Rehashes into a table half as large again: 1.5x rather than 2x keeps the worst case (just
    /// after growing, at 60% load) near 13 bytes per phone instead of 18.
    fn grow(&mut self) {
        let size = self.slots.len() + self.slots.len().div_ceil(2);
        let old = std::mem::replace(&mut self.slots, vec![K::EMPTY; size].into_boxed_slice());
        for key in old.iter().copied().filter(|&k| k != K::EMPTY) {
            if let Err(empty) = self.find(key) {
                self.slots[empty] = key;
            }
        }
    }
}

/// The E.164 digits as a number (see [`PhoneSet`]). Wrapping arithmetic only matters beyond 19
/// digits, which a valid phone never has; it keeps this total rather than panicking.
fn key(phone: &PhoneNumber) -> u64 {
    let key = phone
        .expose_e164()
        .bytes()
        .filter(u8::is_ascii_digit)
        .fold(0u64, |acc, d| {
            acc.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
        });
    if key == u64::EMPTY { u64::MAX } else { key }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    /// 100,000 distinct, valid Russian mobile numbers in a scrambled order.
    fn phones() -> &'static [PhoneNumber] {
        static PHONES: OnceLock<Vec<PhoneNumber>> = OnceLock::new();
        PHONES.get_or_init(|| {
            let mut state = 0x2545_F491_4F6C_DD1D_u64;
            (0..100_000u64)
                .map(|i| {
                    // xorshift picks the operator code; the subscriber part is a permutation of
                    // 0..10^7 (the multiplier is coprime to 10), so no two numbers are equal.
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let operator = [916, 903, 926, 985, 999][(state % 5) as usize];
                    let subscriber = (i * 7_654_321 + 1_234_567) % 10_000_000;
                    let text = format!("+7{operator}{subscriber:07}");
                    PhoneNumber::parse(&text, None).unwrap_or_else(|e| panic!("{e}"))
                })
                .collect()
        })
    }

    #[test]
    fn keys_are_the_e164_digits() {
        let phone = PhoneNumber::parse("+1 416 555 0134", None).unwrap();
        assert_eq!(key(&phone), 14_165_550_134);
        let phone = PhoneNumber::parse("+7 916 123-45-67", None).unwrap();
        assert_eq!(key(&phone), 79_161_234_567);
    }

    #[test]
    fn distinct_phones_are_new_once_then_duplicates() {
        let phones = phones();
        let mut distinct: Vec<&str> = phones.iter().map(PhoneNumber::expose_e164).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), phones.len(), "test data has duplicates");

        let mut set = PhoneSet::with_capacity(phones.len() as u64);
        assert!(set.is_empty());
        assert!(phones.iter().all(|p| set.insert(p)));
        assert_eq!(set.len(), phones.len() as u64);
        assert!(phones.iter().all(|p| !set.insert(p)));
        assert_eq!(set.len(), phones.len() as u64);
        let per_phone = set.heap_bytes() as f64 / set.len() as f64;
        assert!(per_phone <= 12.0, "{per_phone} bytes per phone: {set:?}");
    }

    #[test]
    fn a_low_estimate_grows_and_stays_correct() {
        let phones = phones();
        let mut set = PhoneSet::with_capacity(10);
        let before = set.heap_bytes();
        for (i, phone) in phones.iter().enumerate() {
            assert!(set.insert(phone), "phone {i} reported as seen");
            if i % 997 == 0 {
                assert!(!set.insert(&phones[i / 2]), "phone {} forgotten", i / 2);
            }
        }
        assert!(set.heap_bytes() > before);
        assert_eq!(set.len(), phones.len() as u64);
        assert!(phones.iter().all(|p| !set.insert(p)));
        // Even just after a growth the table stays well below a power-of-two HashSet.
        assert!(set.heap_bytes() as f64 / set.len() as f64 <= 16.0);
    }

    #[test]
    fn small_sets_probe_past_the_end() {
        let mut set = PhoneSet::with_capacity(0);
        for key in 1..=1_000u64 {
            assert!(set.table.insert(key));
            assert!(!set.table.insert(key));
        }
        assert_eq!(set.len(), 1_000);
        assert_eq!(format!("{set:?}").matches("len: 1000").count(), 1);
    }

    #[test]
    fn ids_are_new_once_then_duplicates() {
        let ids: Vec<RecipientId> = (0..50_000)
            .map(|i| RecipientId::parse(&format!("cust-{i}")).unwrap())
            .collect();
        let mut set = IdSet::with_capacity(ids.len() as u64);
        assert_eq!(set.heap_bytes(), 0, "no table before the first id");
        assert!(ids.iter().all(|id| set.insert(IdHash::of(id))));
        assert!(ids.iter().all(|id| !set.insert(IdHash::of(id))));
        assert_eq!(set.len(), ids.len() as u64);
        let per_id = set.heap_bytes() as f64 / set.len() as f64;
        assert!(per_id <= 20.0, "{per_id} bytes per id: {set:?}");
    }

    #[test]
    fn the_zero_hash_is_an_id_like_any_other() {
        let mut set = IdSet::with_capacity(0);
        let (zero, one) = (IdHash([0; 16]), IdHash(1u128.to_le_bytes()));
        assert!(set.insert(zero));
        assert!(!set.insert(zero));
        assert!(set.insert(one));
        assert!(!set.insert(one));
        assert_eq!(set.len(), 2);
    }
}
