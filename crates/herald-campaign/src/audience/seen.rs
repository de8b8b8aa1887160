//! Duplicate phones within one audience.
//!
//! The same person is often in a file twice (two CRM records, a merge of two exports); they must
//! get one message, so the engine skips every later row with a phone it has already seen. This is
//! the one piece of audience state that grows with the file, so it is kept small: a phone is
//! stored as a `u64` in an open-addressing table filled to 85%, about 9.4 bytes per phone, where
//! a `HashSet<String>` would take over 50 and even a `HashSet<u64>`, growing by powers of two, up
//! to ~19.

use std::fmt;

use herald_core::PhoneNumber;

/// Fill the table to this fraction when the expected size is known.
const TARGET_LOAD: (u128, u128) = (17, 20);
/// Grow when an insert would fill the table beyond this fraction: past 90% linear probing slows
/// down sharply.
const MAX_LOAD: (u64, u64) = (9, 10);
/// Marks an empty slot. No phone's key is 0: E.164 numbers start with a non-zero country code.
const EMPTY: u64 = 0;

/// The set of phones seen so far in one audience, at most ~9-10 bytes per phone.
///
/// The key of a phone is its E.164 digits read as a number. E.164 allows at most 15 digits, well
/// within a `u64` (19), and no country code starts with 0, so the key is exact: two phones share
/// a key only if they are the same number, and there are no false duplicates to worry about.
pub struct PhoneSet {
    slots: Box<[u64]>,
    len: u64,
}

impl PhoneSet {
    /// A set sized for `expected` phones (usually [`count_rows`](super::count_rows)). A wrong
    /// estimate is safe: the table grows by half whenever it gets too full.
    pub fn with_capacity(expected: u64) -> Self {
        let (numerator, denominator) = TARGET_LOAD;
        let slots = (u128::from(expected) * denominator)
            .div_ceil(numerator)
            .max(8);
        Self {
            slots: vec![EMPTY; usize::try_from(slots).unwrap_or(usize::MAX)].into_boxed_slice(),
            len: 0,
        }
    }

    /// Adds `phone`; true if it was not in the set yet.
    pub fn insert(&mut self, phone: &PhoneNumber) -> bool {
        self.insert_key(key(phone))
    }

    /// The number of distinct phones.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no phone has been added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The memory the table holds, in bytes.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }

    fn insert_key(&mut self, key: u64) -> bool {
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
    fn find(&self, key: u64) -> Result<usize, usize> {
        let mut index = home(key, self.slots.len());
        loop {
            match self.slots[index] {
                EMPTY => return Err(index),
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
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; size].into_boxed_slice());
        for key in old.iter().copied().filter(|&k| k != EMPTY) {
            if let Err(empty) = self.find(key) {
                self.slots[empty] = key;
            }
        }
    }
}

impl fmt::Debug for PhoneSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the phones themselves: this may end up in a log.
        f.debug_struct("PhoneSet")
            .field("len", &self.len)
            .field("slots", &self.slots.len())
            .finish()
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
    if key == EMPTY { u64::MAX } else { key }
}

/// The slot a key starts probing at. Phone keys are far from uniform (long runs of consecutive
/// numbers with a shared prefix), so they are mixed first: an xor-shift folds the high digits into
/// the low bits, and the Fibonacci multiplier spreads the low bits up to the high ones, which are
/// the ones the multiply-high reduction uses. Multiply-high maps onto any table size, so the
/// table need not be a power of two and can grow by 1.5x.
fn home(key: u64, slots: usize) -> usize {
    let hash = (key ^ (key >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((u128::from(hash) * slots as u128) >> 64) as usize
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
            assert!(set.insert_key(key));
            assert!(!set.insert_key(key));
        }
        assert_eq!(set.len(), 1_000);
        assert_eq!(format!("{set:?}").matches("len: 1000").count(), 1);
    }
}
