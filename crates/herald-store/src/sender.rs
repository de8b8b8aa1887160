//! A sender's shared state: throttled by the provider, blocked by it. Every worker of the
//! sender reads it at the claim, so what one worker was told stops all of them.

use chrono::{DateTime, Utc};

/// A sender as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderState {
    /// Its name.
    pub name: String,
    /// The provider asked it to hold back until then (429, 130429), when still ahead or recent.
    pub throttled_until: Option<DateTime<Utc>>,
    /// The provider blocked it (131048, 368, 131042, 190): nothing is claimed until an operator
    /// resumes it.
    pub blocked: Option<Block>,
}

/// A provider block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The provider's code.
    pub code: String,
    /// Why, in words.
    pub reason: String,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

/// The longest throttle a store records: a provider's `Retry-After` is obeyed up to this (as
/// the channel caps it), whatever a worker asks.
pub const MAX_THROTTLE: std::time::Duration = std::time::Duration::from_secs(15 * 60);
