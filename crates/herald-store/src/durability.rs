//! How much of a crash a stored claim survives: one setting (`[store] durability`) that means
//! the same on every backend.
//!
//! At-most-once rests on it: a claim must be on disk before its request leaves, or a crash
//! brings the delivery back as queued after its message went out, and it goes out again.

/// What a write the store acknowledged survives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// The crash or kill of any process, the store's own included: SQLite in WAL with
    /// `synchronous = NORMAL`, Redis with `appendonly yes` (any `appendfsync`: the AOF is
    /// written to the page cache before Redis replies). An OS crash or power loss may drop the
    /// last second of writes.
    #[default]
    ProcessCrash,
    /// Also an OS crash or power loss: SQLite `synchronous = FULL`, Redis `appendfsync always`
    /// (an fsync per write, at a throughput cost the bench measures).
    PowerLoss,
}

impl Durability {
    /// The config spelling: `process-crash` or `power-loss`.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::ProcessCrash => "process-crash",
            Durability::PowerLoss => "power-loss",
        }
    }

    /// The value of a config spelling ([`Durability::as_str`]).
    pub fn parse(text: &str) -> Option<Self> {
        [Durability::ProcessCrash, Durability::PowerLoss]
            .into_iter()
            .find(|d| d.as_str() == text)
    }
}
