-- Feedback::record_status: one report under the ladder (feedback.lua), atomically. Own args:
-- provider id, callback run or '', callback recipient or '', the report's text (its kept
-- member, src/feedback.rs), the caller's now (ms), kept TTL (ms), kept limit, how many expired
-- reports to trim.
-- The delivery is the one the index (`mid`) names for the provider id, else the callback's.
-- Replies {'applied', run, rcpt, snapshot or ''}, {'unchanged', run, rcpt},
-- {'refused', run, rcpt}, {'kept'} or {'dropped'}.
-- Reads and decides first; a state that does not decode is a `CORRUPT` error with nothing
-- written. The writes (the state, the counters, the index, the trim, the kept report) cannot
-- fail.
local e = check_epoch(); if e then return e end
local pid, cb_run, cb_rcpt, raw = arg(1), arg(2), arg(3), arg(4)
local nowms, ttl, limit, trim = tonumber(arg(5)), tonumber(arg(6)), tonumber(arg(7)), tonumber(arg(8))
local report = fb_report(raw)
if not report then return redis.error_reply('ERR record_status: the report text is not one') end

local run, rcpt
local member = redis.call('HGET', P .. 'mid', pid)
if member then
  run, rcpt = split(member)
  if not run then return corrupt('mid ' .. pid .. ': member names no delivery') end
elseif cb_run ~= '' then
  run, rcpt = cb_run, cb_rcpt
  member = run .. SEP .. rcpt
end

local verdict, new, st = 'kept', nil, nil
if run then
  local dl = P .. 'dl:' .. run
  local stored = redis.call('HGET', dl, rcpt)
  if stored then
    st = dec(stored)
    if not st or type(st.s) ~= 'string' then
      return corrupt('dl:' .. run .. ' ' .. rcpt .. ': the state is not JSON')
    end
    verdict, new = fb_ladder(st, report)
  end
end

-- The writes.
fb_trim(nowms, trim)
if verdict == 'applied' then
  redis.call('HSET', P .. 'dl:' .. run, rcpt, enc(new))
  fb_move(P .. 'run:' .. run, st, new)
  fb_index(st, new, member)
  return {'applied', run, rcpt, redis.call('HGET', P .. 'snap:' .. run, rcpt) or ''}
end
if verdict ~= 'kept' then return {verdict, run, rcpt} end
if redis.call('ZSCORE', FB_KEPT, raw) then return {'kept'} end
if redis.call('ZCARD', FB_KEPT) >= limit then return {'dropped'} end
redis.call('ZADD', FB_KEPT, string.format('%d', nowms + ttl), raw)
redis.call('SADD', FB_KEPT .. ':i:' .. report.i, raw)
if report.k then redis.call('SADD', FB_KEPT .. ':k:' .. report.k, raw) end
return {'kept'}
