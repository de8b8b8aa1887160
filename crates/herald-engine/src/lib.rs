//! Herald's runtime. So far: [`plan`], the dry run of a campaign over its audience, built from
//! the same per-recipient step the worker will use (place, render, schedule, `decide`), so that
//! what `herald plan` shows is what `herald run` will do, minus consent and caps, which only the
//! store knows at the moment of sending.
#![deny(clippy::disallowed_methods)]

pub mod plan;
pub mod prepare;
