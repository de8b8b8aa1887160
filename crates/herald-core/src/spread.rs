//! Spreading releases over a few minutes (design §1.6), so that a window opening at 09:00 for a
//! hundred thousand recipients does not become one thundering second.
//!
//! The offset is a hash of (run, recipient): deterministic, so a restarted worker or a second
//! worker computes the same instant, and stable across Rust versions and platforms (FNV-1a,
//! not `std`'s `DefaultHasher`, whose algorithm is unspecified).

use chrono::TimeDelta;

use crate::id::{RecipientId, RunId};

/// The default spread width.
pub const DEFAULT_SPREAD: TimeDelta = TimeDelta::minutes(10);

/// A deterministic offset in `[0, width)`, whole seconds; zero when `width` is under a second.
pub fn offset(run: &RunId, recipient: &RecipientId, width: TimeDelta) -> TimeDelta {
    let seconds = width.num_seconds();
    if seconds <= 0 {
        return TimeDelta::zero();
    }
    let hash = mix(fnv1a(
        run.as_str()
            .bytes()
            .chain([0xff])
            .chain(recipient.as_str().bytes()),
    ));
    TimeDelta::seconds((hash % seconds as u64) as i64)
}

/// MurmurHash3's finaliser: FNV-1a alone leaves ids that differ in one trailing digit close
/// together modulo small widths, which bunches releases.
fn mix(mut hash: u64) -> u64 {
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

fn fnv1a(bytes: impl Iterator<Item = u8>) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_deterministic_bounded_and_spread() {
        let run = RunId::parse("promo@2026-11-27T10:00").unwrap();
        let width = TimeDelta::minutes(10);
        let offsets: Vec<_> = (0..1000)
            .map(|i| offset(&run, &RecipientId::parse(&format!("r{i}")).unwrap(), width))
            .collect();
        assert!(
            offsets
                .iter()
                .all(|o| *o >= TimeDelta::zero() && *o < width)
        );
        let r0 = RecipientId::parse("r0").unwrap();
        assert_eq!(offset(&run, &r0, width), offsets[0]);
        // 1000 recipients over 600 seconds: every minute bucket gets some.
        for minute in 0..10 {
            let n = offsets.iter().filter(|o| o.num_minutes() == minute).count();
            assert!((50..=150).contains(&n), "minute {minute} got {n}");
        }
        assert_eq!(
            offset(&run, &r0, TimeDelta::milliseconds(900)),
            TimeDelta::zero()
        );
    }
}
