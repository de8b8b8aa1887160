//! The key layout: every key Herald writes, what it holds and who keeps it. This file is the
//! contract the Lua scripts and the Rust side share; change both together.
//!
//! Every key starts with the store's prefix (`h:` unless configured otherwise), so one Redis may
//! hold other data beside Herald's. `<run>` is a [`herald_core::RunId`] (`campaign@fire`),
//! `<rcpt>` a [`herald_core::RecipientKey`] as text, `<phone>` E.164 (`+…`), `<sender>` a
//! configured sender's name, `<channel>` a consent channel name. A *member* naming one delivery
//! in a set shared by runs is `<run>` + [`SEP`] + `<rcpt>`: neither id may contain the
//! separator (run ids are `[a-z0-9-]@<fire>`, recipient keys are printable without controls).
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `epoch` | string | a random id written once when the store is initialised; written only by `herald init` (`RedisStores::init`); every handle remembers it, and every write script compares it (see `RedisStores::open`, "Why opening never creates a store") |
//! | `seq` | string | the write sequence: every write script increments it after checking it is not below the highest value the calling handle has read (each `due` reads it), so a store that went back in time (an older backup, a promoted replica that lacked writes) is refused by every running handle |
//! | `layout` | string | the layout version ([`LAYOUT`]) |
//! | `runs` | zset | run id → created_at (unix ms): `runs()` newest first |
//! | `run:<run>` | hash | the run: `campaign`, `purpose`, `source`, `sender`, `text` (campaign text), `alo` (`1` at_least_once), `sha` (audience hash hex), `created` (ms), `total`, `state` (`active`/`paused`/`cancelled`), `reason` and `by` (why and who paused it; both cleared by every other state change); and its counters `c:queued`, `c:sending`, `c:sent`, `c:unknown`, `c:expired`, `c:failed:<code>`, `c:skipped:<reason>`, and `c:delivered`, `c:read` (of `c:sent`, those at or above that rung), kept by every script that moves a delivery, so `counts` reads one hash |
//! | `sruns:<sender>` | set | the runs of a sender (a run without a sender is under the empty name) |
//! | `qruns` | set | the runs that may have queued work: every run not cancelled with a member in its `due:<run>` is here; `due` reads no other run (see "The queue index" below) |
//! | `snap:<run>` | hash | `<rcpt>` → the recipient snapshot as JSON, with `scheduled_at` and `expires_at`: written once at expansion, never changed, deleted by compaction |
//! | `dl:<run>` | hash | `<rcpt>` → the delivery's mutable state as JSON (below); a field here is the (run, recipient) dedupe: compaction deletes it only once the run's expansion is finished (`total` set, after which `insert_batch` refuses rows the run lacks), and reduces it to a tombstone before |
//! | `due:<run>` | zset | `<rcpt>` → due instant (unix ms) of every *queued* delivery of the run, and nothing else |
//! | `leases` | zset | member → lease end (ms) of every `sending` delivery: `in_flight` and `recover_expired` |
//! | `hist:<phone>` | zset | member → slot (ms) of every send recorded for the phone (claimed, not requeued); the member's delivery names campaign and purpose via its run |
//! | `tier:<sender>` | zset | `<phone>` → latest slot (ms): the sender's unique recipients per moving 24 h, trimmed below now − 24 h by the claim |
//! | `recent` | zset | `<phone>` → latest slot (ms) over every sender: `recent_recipients`; compaction trims it below now − 48 h (the tier's window is 24 h) |
//! | `consent:<channel>:<phone>` | hash | event identity (`<kind>` SEP `<scope>` SEP `<instant ms>` SEP `<source>`; proof is not part of it) → the event as JSON `{"r":<recorded ms>,"k":kind,"c":scope,"o":<instant ms>,"s":source,"p":proof or absent}`; `HLEN` is what [`herald_store::ConsentSeen`] counts |
//! | `sender:<sender>` | hash | `tat` (GCRA theoretical arrival time, unix µs), `throttled` (ms), `block_code`, `block_reason`, `block_at` (ms) |
//! | `senders` | set | senders with a recorded throttle or block |
//! | `done` | zset | member → instant (ms) the delivery became terminal: compaction walks it oldest first |
//! | `mid` | hash | provider message id (WhatsApp `wamid`) → member: every delivery that ended `sent` with a detail (its provider id), or that a status report resolved from `unknown`; deleted with the delivery by compaction (layout 2) |
//! | `kept` | zset | kept early status report (its text, below) → expiry (ms: received + `KEPT_STATUS_TTL`); at most `KEPT_STATUS_LIMIT` members (layout 2) |
//! | `kept:i:<provider id>` | set | the kept reports naming that provider id (layout 2) |
//! | `kept:k:<member>` | set | the kept reports whose callback names that delivery (layout 2) |
//! | `tags:<phone>` | set | the tags stored for the phone by replies, at most `MAX_TAGS_PER_PHONE`; kept for the store's life (layout 2) |
//! | `campaigns` | set | the ids of the recurring campaigns with a stored version (`<id>` a [`herald_core::CampaignId`]), at most `MAX_CAMPAIGNS`: `campaigns()` reads it and their versions in one script (layout 3) |
//! | `campaign:<id>` | hash | the campaign's current version: `hash` (SHA-256 of `text`, 64 lowercase hex), `text` (the YAML, at most `MAX_CAMPAIGN_TEXT_BYTES`), `source`, `at` (`stored_at`, RFC 3339 with every digit); one hash per id, replaced whole by `put_campaign.lua` (layout 3) |
//! | `fires:<id>` | zset | fire instant as decimal unix seconds → the same seconds: the campaign's recorded fires, newest last; at most `FIRES_KEPT` members, the oldest dropped by `record_fire.lua` (layout 3) |
//! | `fire:<id>` | hash | fire instant (the member of `fires:<id>`) → the record as JSON `{"k":"run"\|"missed"\|"superseded"\|"overlap","r":"<run id>" (run, overlap only),"h":"<hash>","a":"<recorded_at, RFC 3339>"}`; written and pruned with `fires:<id>` in the same script, never changed once written (layout 3) |
//! | `campaign_problems` | hash | campaign file path (as a scheduler named it) → `{"d":"<diagnostics, at most MAX_PROBLEM_BYTES>","a":"<seen at, RFC 3339>"}`: the files a scheduler could not load, for `status`; at most `MAX_PROBLEMS` fields, written by `set_problem` (layout 3) |
//!
//! # A delivery's state (`dl:<run>` values)
//! JSON, short field names because a campaign holds millions:
//! - queued: `{"s":"q","d":<due ms>,"w":"<wait reason>"|absent,"a":<attempts>}`
//! - sending: `{"s":"s","a":<attempts>,"o":"<owner>","l":<lease end ms>,"t":<slot µs>,"r":1|absent,
//!   "p":"<phone>"}`: `p` is the recipient's E.164 phone, so requeue, finish and recovery reach
//!   `hist:<phone>` without decoding the snapshot (a queued or terminal state has none)
//! - terminal: `{"s":"<state>","a":…,"x":"<reason or code>"|absent,"m":"<detail>"|absent,"f":<ms>,
//!   "o","t","r" kept from the last claim,"g":"delivered"|"read"|absent,"i":"<provider id>"|absent}`
//!   where `<state>` is the [`herald_core::Outcome`] state name (`sent`, `failed`, `unknown`,
//!   `expired`, `skipped`), `x` its reason or code, `m` for `sent` the provider's message id, `g`
//!   the rung of a `sent` a status report raised (absent: `sent`), `i` the provider id `mid`
//!   holds for it (written with the entry: a `failed` with `i` failed by a report, after it was
//!   sent or resolved from `unknown`).
//! - compacted while the run's expansion is unfinished: `{"s":"<state>","x":"<reason or
//!   code>"|absent}`, the tombstone that keeps the dedupe (`src/claims/compact.rs`: what
//!   compaction keeps and why, and the bytes it costs); every reader takes it as the terminal
//!   state it was, without owner, slot or end instant.
//!
//! `o`/`t`/`r` (last owner, slot, recovered) stay after a claim ends or is requeued, for
//! [`herald_store::Deliveries::claims`].
//!
//! Scripts write states with `enc_state` of `scripts/state.lua`, never `cjson.encode`: cjson
//! writes numbers with 14 significant digits, which would round a slot in µs (16 digits). A
//! delivery ended at expansion (`Initial::Ended`) has a state (with `f`) and a `done` entry but
//! no `snap:<run>` entry: nothing reads its snapshot.
//!
//! # The queue index (`qruns`)
//! `due` and `next_due` look only at the runs of `qruns`, so their cost follows the runs with
//! queued work, not every run ever made (a cron campaign makes ~100k runs a year, and `runs`
//! and `sruns:<sender>` keep them all). The invariant: a run not cancelled with a member in
//! `due:<run>` is in `qruns` (a cancelled run is never due again, whatever its queue holds
//! until `cancel_chunk` has ended it). Every script that adds to `due:<run>` (`insert_batch`,
//! the defer and requeue of `change`, the at_least_once requeue of `recover_expired`) adds the
//! run in the same script; only `due.lua` removes one, in the same script that sees its
//! `due:<run>` empty (or the run cancelled or gone), so no interleaving loses queued work. A
//! paused run stays (it will be resumed); a run emptied by claims stays until the next `due`
//! call drops it. That `SREM` is the only write of `due.lua`: it needs no epoch check, since on
//! a Redis that came back empty there is no `qruns` to remove from (nothing is created).
//!
//! One set for every sender, not one per sender: a writer then needs no lookup of the run's
//! sender (nor a move when a run adopts one, `create_run.lua`), and a scoped call reads
//! `SINTER qruns sruns:<sender>`, which Redis walks from the smaller set, so it costs the runs
//! with queued work, whatever the sender's history. Not a zset of earliest due instants: that
//! would have to change with every claim (the hot path) to stay exact. The index is part of
//! layout 1: no store was written by a version without it (the Redis store had not shipped), so
//! there is nothing to rebuild.
//!
//! # Provider feedback (layout 2)
//! Statuses, replies and tags (`herald_store::Feedback`, `src/feedback.rs`, the ladder in
//! `scripts/feedback.lua`). A status report finds its delivery through `mid`, else through its
//! callback key. One it cannot apply yet (no delivery, or the delivery still `sending`) is *kept*:
//! its text is a member of `kept` (scored by its expiry) and of `kept:i:<provider id>` and, with a
//! callback, `kept:k:<member>`. The text is the JSON `{"i":"<provider id>","k":"<member>"|absent,
//! "s":"sent"|"delivered"|"read"|"failed","c":"<code>"|absent,"a":<provider instant ms>}` that
//! `src/feedback.rs` writes in that field order, so a retried report is the same member and is kept
//! once. The write that makes the delivery `sent` (`change.lua`, a finish) or `unknown`
//! (`change.lua`, or `recover_expired.lua`) reads the sets of its provider id and its member,
//! applies the unexpired reports in the order they arrived, and removes them from all three keys
//! in the same script. Expired reports are removed, a bounded number per call, by
//! `record_status.lua` and `recover_expired.lua`.
//!
//! # Layout versions
//! - `1`: the first Redis store.
//! - `2`: adds `mid`, `kept`, `kept:i:*`, `kept:k:*`, `tags:*`, the run's `by`, `c:delivered` and
//!   `c:read`, and a state's `g` and `i`. Every key of layout 1 reads the same. A store at layout 1
//!   is upgraded when a handle opens it to work (`RedisStores::open`, `RedisStores::init`; not
//!   `open_to_inspect`, which reads it as it is): `src/upgrade.rs`.
//! - `3`: adds `campaigns`, `campaign:*`, `fires:*`, `fire:*` and `campaign_problems` (recurring campaigns). Every key
//!   of layout 2 reads the same, and nothing of layout 2 implies a campaign version or a fire
//!   record, so the upgrade from 2 writes only the version (`src/upgrade.rs`); a layout 1 store
//!   goes through 2 first.
//!
//! # Recurring campaigns (layout 3)
//! Campaign versions and fire records (`herald_store::Fires`, `src/fires.rs`). A fire is recorded
//! once: `record_fire.lua` reads `fire:<id>` for the instant and, only if absent, writes the
//! record to both keys and prunes the campaign beyond `FIRES_KEPT` (oldest first, from both), in
//! one script. Nothing else writes these keys; compaction leaves them (they are bounded per
//! campaign, and the number of campaigns is bounded).
//!
//! # Time
//! Scripts take the store's now as an argument when the store is timed by a caller's clock
//! ([`herald_store::StoreTime::Clock`]) and read `TIME` otherwise; instants the caller passes in
//! (`now` of `finish`, due instants) are its own.

/// The layout version this crate writes and reads.
pub(crate) const LAYOUT: &str = "3";

/// The older layout versions an open upgrades to [`LAYOUT`] (`src/upgrade.rs`).
pub(crate) const UPGRADABLE: &[&str] = &["1", "2"];

/// Between a run id and a recipient key in a member naming a delivery.
pub(crate) const SEP: char = '\u{1f}';

/// Key names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

// The scripts build per-run and per-phone keys from the prefix themselves, so not every helper
// has a Rust caller.
#[allow(dead_code)]
impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix itself: scripts build per-run and per-phone keys from it.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub(crate) fn run(&self, run: &str) -> String {
        format!("{}run:{run}", self.prefix)
    }

    pub(crate) fn snap(&self, run: &str) -> String {
        format!("{}snap:{run}", self.prefix)
    }

    pub(crate) fn dl(&self, run: &str) -> String {
        format!("{}dl:{run}", self.prefix)
    }

    pub(crate) fn due(&self, run: &str) -> String {
        format!("{}due:{run}", self.prefix)
    }

    /// The runs that may have queued work (see "The queue index").
    pub(crate) fn queued_runs(&self) -> String {
        format!("{}qruns", self.prefix)
    }

    pub(crate) fn sender_runs(&self, sender: &str) -> String {
        format!("{}sruns:{sender}", self.prefix)
    }

    pub(crate) fn hist(&self, phone: &str) -> String {
        format!("{}hist:{phone}", self.prefix)
    }

    pub(crate) fn tier(&self, sender: &str) -> String {
        format!("{}tier:{sender}", self.prefix)
    }

    pub(crate) fn consent(&self, channel: &str, phone: &str) -> String {
        format!("{}consent:{channel}:{phone}", self.prefix)
    }

    /// The tags stored for a phone (E.164).
    pub(crate) fn tags(&self, phone: &str) -> String {
        format!("{}tags:{phone}", self.prefix)
    }

    /// The current version of a recurring campaign.
    pub(crate) fn campaign(&self, campaign: &str) -> String {
        format!("{}campaign:{campaign}", self.prefix)
    }

    pub(crate) fn campaign_problems(&self) -> String {
        format!("{}campaign_problems", self.prefix)
    }

    pub(crate) fn sender(&self, sender: &str) -> String {
        format!("{}sender:{sender}", self.prefix)
    }

    /// A member naming one delivery in a set shared by runs.
    pub(crate) fn member(run: &str, recipient: &str) -> String {
        format!("{run}{SEP}{recipient}")
    }
}
