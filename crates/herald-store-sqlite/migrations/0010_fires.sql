-- Schema version 10: recurring campaigns (herald_store::Fires): the current version of each
-- campaign, and one record per fire instant saying whether it made a run or why not. Times are
-- unix milliseconds except `fire`, a whole second like the cron instants it records.

-- The current version of each campaign id: `hash` is the SHA-256 of `text` (64 lowercase hex
-- digits), which decides whether a loaded file is a new version. A rowid table, not WITHOUT
-- ROWID: a text may be 1 MiB, and large rows belong in a table keyed apart from them.
CREATE TABLE campaigns (
    campaign  TEXT    NOT NULL PRIMARY KEY,
    hash      TEXT    NOT NULL,
    text      TEXT    NOT NULL,
    source    TEXT    NOT NULL,
    stored_at INTEGER NOT NULL
);

-- One row per (campaign, fire), inserted once (INSERT OR IGNORE) by whichever scheduler records
-- it first; the newest 1000 per campaign are kept (herald_store::FIRES_KEPT). `run` is the run
-- the fire made ('run') or the run still pending that it overlapped ('overlap'), NULL for the
-- others. No foreign key to `campaigns` or `runs`: a record outlives the runs compaction drops.
CREATE TABLE fires (
    campaign    TEXT    NOT NULL,
    fire        INTEGER NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('run', 'missed', 'superseded', 'overlap')),
    run         TEXT,
    hash        TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (campaign, fire),
    CHECK ((kind IN ('run', 'overlap')) = (run IS NOT NULL))
) WITHOUT ROWID;

-- Campaign files a scheduler could not load (herald_store::CampaignProblem), by the path the
-- scheduler named: shown by `status` until that file loads again or is removed. At most 1000
-- rows (herald_store::MAX_PROBLEMS), each at most 16 KiB of diagnostics.
CREATE TABLE campaign_problems (
    source      TEXT    NOT NULL PRIMARY KEY,
    diagnostics TEXT    NOT NULL,
    at          INTEGER NOT NULL
);
