-- Schema version 7: why a queued delivery waits (herald_store::WaitReason): its schedule, its
-- window, its spread offset, provider back-pressure, a retry, the messaging tier or an operator.
-- `herald status` counts the queue by it and `herald run --until-idle` says what is left. NULL
-- for deliveries that are not queued, and for queued ones nothing holds back (due at once).
ALTER TABLE deliveries ADD COLUMN wait_reason TEXT
    CHECK (wait_reason IN ('schedule', 'window', 'spread', 'throttle', 'retry', 'tier', 'pause'));

-- Deliveries queued by an older herald never said why. A fresh one (no request made yet) was
-- deferred for its schedule, its window, its spread or the tier, and of these only the window
-- (and the schedule, which the window subsumes for a reader) can hold it for long: 'window'. One
-- with a request behind it came back to the queue because the provider did not take it
-- (throttle, retry, a stop): 'retry'. Either way the next worker that reaches it decides again
-- and stores the real reason; the label only shows in `status` until then.
UPDATE deliveries
SET wait_reason = CASE WHEN attempts > 0 THEN 'retry' ELSE 'window' END
WHERE state = 'queued';
