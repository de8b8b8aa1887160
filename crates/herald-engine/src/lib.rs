//! Herald's runtime: [`plan`], the dry run of a campaign over its audience, built from the same
//! per-recipient step the worker uses (place, render, schedule, `decide`), so that what
//! `herald plan` shows is what `herald run` will do, minus consent and caps, which only the
//! store knows at the moment of sending; [`expand`], a campaign into a stored run (with its
//! sender and campaign text) and its deliveries; [`worker`], which claims, sends and records
//! them through the store's shared state, any number of workers at once; [`Shutdown`], the one
//! stop signal of a process.
#![deny(clippy::disallowed_methods)]

pub mod expand;
pub mod feedback;
mod first_seen;
pub mod idle;
pub mod plan;
pub mod prepare;
pub mod recurring;
pub mod shutdown;
pub mod statuses;
pub mod worker;

pub use shutdown::{Shutdown, ShutdownSignal};

/// The wall clock, for production; tests pass their own [`herald_core::clock::Clock`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl herald_core::clock::Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}
