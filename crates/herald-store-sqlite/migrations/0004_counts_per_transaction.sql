-- Schema version 4: `run_counts` is maintained by the writes themselves, once per transaction
-- (src/tally.rs), instead of by a per-row trigger. The trigger ran two statements, each with a
-- statement journal, for every state change: a claim and an outcome per delivery, about a
-- quarter of the drain. The counts already stored stay right: every state change after this one
-- goes through a tallied write. The delete trigger stays (nothing deletes deliveries today; if
-- anything ever does, the counts still follow).
DROP TRIGGER deliveries_counted_on_update;
