//! Herald's policy core: everything that decides *whether and when* a message may go out.
//!
//! Pure by construction: no I/O, no async, no clock reads (`clippy.toml` bans them and the lint
//! below makes that an error). Every function that needs the time takes `now` as an argument, so
//! the same code runs in `herald plan`, in the worker at the moment of a send, and in property
//! tests that jump across DST changes.
//!
//! # Layout
//! - [`phone`], [`region`], [`tz`], [`id`]: parsed input types (parse, don't validate).
//! - [`window`], [`holiday`], [`presets`]: send windows in the recipient's local time.
//! - [`consent`], [`cap`], [`template`]: the other per-send checks.
//! - [`decision`], [`spread`], [`outcome`]: the verdict and its terminal states.
//! - [`clock`]: the port adapters implement to supply `now`.
#![deny(clippy::disallowed_methods)]

pub mod cap;
pub mod clock;
pub mod consent;
pub mod decision;
pub mod holiday;
pub mod id;
pub mod keyword;
pub mod outcome;
pub mod phone;
pub mod presets;
pub mod region;
pub mod spread;
pub mod template;
pub mod tz;
pub mod window;

pub use cap::{CapPeriod, CapScope, FrequencyCap, PastSend};
pub use consent::{
    ConsentChannel, ConsentEvent, ConsentKind, ConsentState, Purpose, RecordedConsent, Scope,
};
pub use decision::{Decision, DeferReason, Delivery, Facts, Policy, decide};
pub use id::{AudienceId, CampaignId, RecipientId, RecipientKey, RunId, SenderId};
pub use outcome::{Outcome, SkipReason};
pub use phone::PhoneNumber;
pub use region::Region;
pub use tz::TimeZone;
pub use window::{Place, SendWindow, UnknownZone, WindowSpec};
