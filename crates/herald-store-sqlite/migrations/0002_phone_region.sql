-- Schema version 2: the phone's region (libphonenumber's country of the number) beside it, so a
-- delivery read back from the queue rebuilds its PhoneNumber without re-running libphonenumber's
-- validation (~30 us a row, more than the whole per-delivery budget of the drain). NULL for rows
-- written by version 1 and for numbers without a region: those are parsed in full.
ALTER TABLE deliveries ADD COLUMN phone_region TEXT;
