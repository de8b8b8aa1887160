-- Schema version 3: why a run is paused (a provider block, repeated template errors), shown by
-- `herald status`; NULL when it is not paused or was paused without a reason.
ALTER TABLE runs ADD COLUMN state_reason TEXT;
