-- Herald's embedded store, schema version 1. Applied once by src/migrations.rs inside a
-- transaction that also sets PRAGMA user_version = 1.
--
-- Times are unix seconds (INTEGER): 4-6 bytes a value instead of a 20-byte RFC 3339 string, and
-- they compare as numbers in the due index. Phones are E.164 text: this file is the one place the
-- full number lives.

-- One row per (campaign, fire time). Deliveries refer to a run by its small integer `id` rather than
-- by the `<campaign>@<fire>` text, which would otherwise be repeated in every one of a million rows
-- and in both of their indexes.
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    run_id        TEXT    NOT NULL UNIQUE,
    campaign      TEXT    NOT NULL,
    purpose       TEXT    NOT NULL,
    source        TEXT    NOT NULL,
    at_least_once INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    total         INTEGER,
    state         TEXT    NOT NULL DEFAULT 'active'
                  CHECK (state IN ('active', 'paused', 'cancelled'))
);

-- The queue and the ledger in one table: a delivery is queued (waiting until due_at), sending
-- (claimed, request in flight) or terminal. A rowid table, so inserts append to the end of the
-- table b-tree; the (run, recipient) identity is a UNIQUE index that makes insert_batch idempotent.
CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY,
    run          INTEGER NOT NULL REFERENCES runs (id),
    recipient    TEXT    NOT NULL,
    state        TEXT    NOT NULL
                 CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'unknown', 'expired', 'skipped')),
    due_at       INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    scheduled_at INTEGER,
    expires_at   INTEGER,
    -- skipped: the SkipReason name; failed: the provider's code; detail: either, in words.
    reason       TEXT,
    code         TEXT,
    detail       TEXT,
    -- The recipient snapshot (NULL for audience rows that could not be parsed; those start terminal).
    phone        TEXT,
    zone         TEXT,
    locale       TEXT,
    country      TEXT,
    attributes   TEXT,   -- JSON object of strings; NULL when empty
    line         INTEGER,
    CHECK (state NOT IN ('queued', 'sending') OR (phone IS NOT NULL AND due_at IS NOT NULL))
);

CREATE UNIQUE INDEX deliveries_key ON deliveries (run, recipient);

-- The queue: only queued rows are in it, so it shrinks as the run drains and `due` is a range seek
-- on due_at whatever the size of the ledger. `run` rides along so the paused/cancelled filter is
-- answered from the index.
CREATE INDEX deliveries_due ON deliveries (due_at, run) WHERE state = 'queued';

-- Requests in flight: tiny (at most the worker concurrency), read by in_flight after a crash.
CREATE INDEX deliveries_sending ON deliveries (run) WHERE state = 'sending';

-- Counts per (run, state, skip reason or failure code), kept in the same transaction as every
-- change to a delivery, so they cannot drift from the ledger: `counts` reads a handful of rows here
-- instead of aggregating a million deliveries (about a second at 1M rows, with the connection held
-- the whole time). Inserts are counted by insert_batch once per batch (a per-row trigger cost a
-- fifth of the enqueue rate); state changes and deletes by the triggers below.
CREATE TABLE run_counts (
    run   INTEGER NOT NULL REFERENCES runs (id),
    state TEXT    NOT NULL,
    label TEXT    NOT NULL,   -- reason (skipped), code (failed), '' otherwise
    n     INTEGER NOT NULL,
    PRIMARY KEY (run, state, label)
) WITHOUT ROWID;

CREATE TRIGGER deliveries_counted_on_update AFTER UPDATE OF run, state, reason, code ON deliveries
WHEN OLD.run IS NOT NEW.run OR OLD.state IS NOT NEW.state
  OR OLD.reason IS NOT NEW.reason OR OLD.code IS NOT NEW.code
BEGIN
    UPDATE run_counts SET n = n - 1
    WHERE run = OLD.run AND state = OLD.state AND label = coalesce(OLD.reason, OLD.code, '');
    INSERT INTO run_counts (run, state, label, n)
    VALUES (NEW.run, NEW.state, coalesce(NEW.reason, NEW.code, ''), 1)
    ON CONFLICT (run, state, label) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER deliveries_counted_on_delete AFTER DELETE ON deliveries
BEGIN
    UPDATE run_counts SET n = n - 1
    WHERE run = OLD.run AND state = OLD.state AND label = coalesce(OLD.reason, OLD.code, '');
END;

-- Send history for frequency caps: one row per claimed delivery (keyed by it, so a claim can never
-- be counted twice), looked up by phone and time.
CREATE TABLE sends (
    delivery INTEGER PRIMARY KEY REFERENCES deliveries (id),
    phone    TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    campaign TEXT    NOT NULL,
    purpose  TEXT    NOT NULL
);

CREATE INDEX sends_phone_at ON sends (phone, at);

-- The consent log, append-only. The primary key is the event's identity (proof and recorded_at are
-- not part of it), so re-importing the same file stores nothing new; ordering it by occurred_at
-- after (channel, phone) makes `events` an ordered range read. WITHOUT ROWID: the key is the row.
CREATE TABLE consents (
    channel     TEXT    NOT NULL,
    phone       TEXT    NOT NULL,
    occurred_at INTEGER NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('opt_in', 'opt_out')),
    scope       TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    proof       TEXT,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (channel, phone, occurred_at, kind, scope, source)
) WITHOUT ROWID;
