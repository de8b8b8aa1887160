-- Schema version 8: several workers share one store. A claim has an owner and a lease, a run
-- keeps its sender and campaign text so any worker can work it, and each sender's throttle,
-- block, rate (GCRA) and tier are kept here, where every worker's claim reads and updates them
-- in the same transaction.
--
-- Units: `slot` and `senders.tat` are unix microseconds (the rate's slots are finer than a
-- millisecond at high rates); every other new time column is unix milliseconds (store time).

-- The sender a run sends through and its campaign file's text. NULL for runs created by schema 7
-- and older: such a run adopts both the first time it is submitted again (Runs::create_run) and
-- is never due to a worker's scope before that.
ALTER TABLE runs ADD COLUMN sender TEXT;
ALTER TABLE runs ADD COLUMN campaign_text TEXT;

-- The claim: who holds it, until when (ms), the send slot it was granted (us, kept after the
-- delivery ends: `claims` and the end-to-end rate check read it) and whether another worker
-- recovered it after its lease ended.
ALTER TABLE deliveries ADD COLUMN owner TEXT;
ALTER TABLE deliveries ADD COLUMN lease_until INTEGER;
ALTER TABLE deliveries ADD COLUMN slot INTEGER;
ALTER TABLE deliveries ADD COLUMN recovered INTEGER NOT NULL DEFAULT 0;

-- Expired leases: a tiny partial index (the sending rows only), ordered by lease end, so
-- recover_expired is a range seek however large the ledger.
CREATE INDEX deliveries_lease ON deliveries (lease_until) WHERE state = 'sending';

-- A row left sending by an older herald has no owner that could ever finish it (that herald is
-- gone, or writes the old schema): it gets an already expired lease, so the first
-- recover_expired ends it `unknown` exactly as the old crash recovery did, naming this owner.
UPDATE deliveries
SET owner = 'before-schema-8', lease_until = 0, slot = sent_at * 1000000
WHERE state = 'sending';

-- Each sender's shared state: the provider's throttle (until, ms) and block (code, reason, at
-- ms; kept until an operator resumes it), the rate's theoretical arrival time (GCRA, burst one,
-- us) and how many phones are in its tier window (the rows of `tier`, kept with them).
CREATE TABLE senders (
    name            TEXT    PRIMARY KEY,
    throttled_until INTEGER,
    block_code      TEXT,
    block_reason    TEXT,
    blocked_at      INTEGER,
    tat             INTEGER,
    tier_count      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- The messaging tier: each phone a sender claimed a delivery to within the last 24 hours of
-- store time, with its latest claim's slot (ms). A claim to a phone already here is admitted;
-- a new phone only while `senders.tier_count` is below the tier. Rows that left the window are
-- deleted at the next claim through `tier_by_time`, so the count is kept, not computed: a claim
-- costs the same at 100 thousand recipients as at ten.
CREATE TABLE tier (
    sender TEXT    NOT NULL,
    phone  TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    PRIMARY KEY (sender, phone)
) WITHOUT ROWID;

CREATE INDEX tier_by_time ON tier (sender, at);
