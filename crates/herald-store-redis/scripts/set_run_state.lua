-- Runs::set_run_state and Runs::pause. Own args: run, state, reason ('' for none; only a pause
-- keeps one), who paused it (`by`; '' for none: every change but a pause clears it).
-- Returns 'ok', 'nf' (no such run) or 'cancelled' (a cancelled run stays so).
-- A cancel only sets the state here: the queued deliveries are ended by cancel_chunk.lua calls.
local e = check_epoch(); if e then return e end
local key = P .. 'run:' .. arg(1)
local current = redis.call('HGET', key, 'state')
if not current then return 'nf' end
if current == 'cancelled' and arg(2) ~= 'cancelled' then return 'cancelled' end
redis.call('HSET', key, 'state', arg(2))
if arg(3) ~= '' then redis.call('HSET', key, 'reason', arg(3)) else redis.call('HDEL', key, 'reason') end
if arg(4) ~= '' then redis.call('HSET', key, 'by', arg(4)) else redis.call('HDEL', key, 'by') end
return 'ok'
