//! The worker's identity for this process: `host/pid/random`.

use std::hash::{BuildHasher, Hasher};

use herald_store::WorkerId;

/// `host/pid/random` for this process: the host from the kernel (or `$HOSTNAME`), the pid, and
/// 32 random bits so a restarted worker that reuses a pid is a different owner (its
/// predecessor's claims are recovered, never adopted).
pub fn process_worker_id() -> WorkerId {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    WorkerId::for_process(host.trim(), std::process::id(), random())
}

/// 32 bits from the standard library's per-process random hash keys: no dependency for what
/// only needs to differ between two starts of a process.
fn random() -> u32 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::UNIX_EPOCH
            .elapsed()
            .map_or(0, |since| since.as_nanos()),
    );
    // The high and low halves folded: both are random.
    let bits = hasher.finish();
    (bits ^ (bits >> 32)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_ids_of_one_process_differ_and_name_it() {
        let (a, b) = (process_worker_id(), process_worker_id());
        assert_ne!(a, b);
        let pid = format!("/{}/", std::process::id());
        assert!(a.as_str().contains(&pid), "{a}");
        assert!(WorkerId::parse(a.as_str()).is_some(), "{a}");
    }
}
