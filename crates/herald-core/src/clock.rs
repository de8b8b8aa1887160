//! The clock port. The core never reads time; the engine passes `now` in, taken from an
//! implementation of this trait (the system clock in production, a manual one in tests).

use chrono::{DateTime, Utc};

/// A source of the current instant.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}
