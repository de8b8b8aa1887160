-- Schema version 5: the send history for frequency caps is a column of the ledger, not a table
-- of its own. A claim used to update the delivery and insert into `sends` (a second b-tree, its
-- index and a foreign-key check); now it sets `sent_at` in the same UPDATE, and the partial index
-- below holds exactly the deliveries that count toward a cap: claimed, and not since proved
-- unsent (failed, expired, skipped or requeued clear it). A history entry's campaign and purpose
-- are its run's.
ALTER TABLE deliveries ADD COLUMN sent_at INTEGER;

UPDATE deliveries SET sent_at = (SELECT at FROM sends WHERE sends.delivery = deliveries.id)
WHERE id IN (SELECT delivery FROM sends);

CREATE INDEX deliveries_sent ON deliveries (phone, sent_at) WHERE sent_at IS NOT NULL;

DROP TABLE sends;
