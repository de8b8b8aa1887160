//! Issue 11's acceptance, end to end: `herald scheduler` and several `herald worker` processes on
//! one store, sending to the fake WhatsApp Cloud API (herald-testkit's provider). Issue 12's: the
//! same tests on Redis (each is a function of the [`kit::Backend`], run once per store), and
//! what Redis's own faults must not break (`redis_faults`).
//!
//! What these tests read to judge the cluster:
//! - the fake provider's log: what reached it, to whom, when (receipt instants);
//! - the store through its own port (`Deliveries::claims`, `Senders::sender`): each claim's
//!   owner, granted slot, state and whether it was recovered, and the sender's throttle and
//!   block. The port, not the tables: the same tests hold for any backend;
//! - `herald status --format json`: the counts an operator sees, which must add up.
//!
//! They wait on real processes with a capped poll, and never assert on how long anything took.
//! The lease is set to 9 s (three 3 s HTTP timeouts) in their config (`[worker] lease_seconds`, default 60) so a killed
//! worker's claims are recovered within the test.

mod kills;
mod kit;
mod limits;
mod redis_faults;
mod sender_state;
