-- Schema version 9: what the provider tells Herald after a send (herald_store::Feedback), and
-- who paused a run. Times in new columns are unix milliseconds.

-- Who paused the run (`herald`, `operator (cli)`, `operator (api)`); NULL unless paused by
-- Runs::pause, cleared with state_reason when the run is resumed.
ALTER TABLE runs ADD COLUMN paused_by TEXT;

-- The provider's message id (the WhatsApp wamid) of a delivery the provider accepted: set by the
-- finish that records it `sent` (its detail) or by a status report that resolves an `unknown`
-- by its callback key, and kept when a later report fails it, so duplicates still find it. On
-- the delivery row itself, so compaction drops the id with the delivery.
ALTER TABLE deliveries ADD COLUMN provider_id TEXT;

-- How far a `sent` delivery got: NULL (accepted), 'delivered' or 'read'. It is also the label
-- `run_counts` counts a sent row under, so delivered and read are counted like every state.
ALTER TABLE deliveries ADD COLUMN progress TEXT
    CHECK (progress IS NULL OR progress IN ('delivered', 'read'));

-- Statuses and replies find a delivery by its message id. Not UNIQUE: Meta's ids are unique,
-- but a file written before this schema may hold any detail text on its sent rows, and a
-- UNIQUE index would make that file impossible to upgrade; a lookup takes the newest row.
CREATE INDEX deliveries_provider_id ON deliveries (provider_id) WHERE provider_id IS NOT NULL;

-- Rows already sent kept their message id in `detail`.
UPDATE deliveries SET provider_id = detail WHERE state = 'sent' AND detail IS NOT NULL;

-- Reports for a message not recorded yet (the webhook outran the worker's finish, or the worker
-- crashed before it): kept until `expires_at` (ms, the reporting call's now + 24 h) and applied
-- by the write that records the send. `run_id`/`recipient`: the delivery key of the callback
-- data, when the report carried one (text: the run may not exist in this file). `status` is a
-- rung name or 'failed' (with `code`); `reported_at` is the provider's instant (ms).
CREATE TABLE kept_statuses (
    id          INTEGER PRIMARY KEY,
    provider_id TEXT    NOT NULL,
    run_id      TEXT,
    recipient   TEXT,
    status      TEXT    NOT NULL CHECK (status IN ('sent', 'delivered', 'read', 'failed')),
    code        TEXT,
    reported_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    CHECK ((status = 'failed') = (code IS NOT NULL))
);

CREATE INDEX kept_statuses_by_id ON kept_statuses (provider_id);
CREATE INDEX kept_statuses_by_key ON kept_statuses (run_id, recipient) WHERE run_id IS NOT NULL;
CREATE INDEX kept_statuses_by_expiry ON kept_statuses (expires_at);

-- Tags a reply stored for a phone (a button's `on_reply: { tag: x }`), read by `where: { tags }`
-- beside the audience's own. `added_at` ms.
CREATE TABLE tags (
    phone    TEXT    NOT NULL,
    tag      TEXT    NOT NULL,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (phone, tag)
) WITHOUT ROWID;
