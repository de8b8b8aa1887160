-- Deliveries::recover_expired: up to `limit` sending deliveries whose lease ended by the store's
-- now, each ended `unknown` or, for an at_least_once run, queued due at once with its history
-- entry removed (or, that run cancelled, ended `skipped(cancelled)`, history entry removed too:
-- a cancelled run is never claimed again, so queued it would wait for ever); `r` = 1 either way. A delivery ended `unknown` takes the status reports kept
-- for it (feedback.lua), which may make it `sent` or `failed`; up to `trim` expired kept reports
-- are dropped. Own args: limit, trim.
-- Reply: flat { run, recipient, owner, requeued (0/1) } per recovered delivery (0 for one ended
-- `skipped(cancelled)`).
-- Lua in Redis has no rollback: every ended lease is read and its state decoded first, and a
-- member or state that does not read is a `CORRUPT` error with nothing written (a recovery
-- stopped halfway would have ended deliveries whose reports the error loses). Only then are the
-- writes done, none of which can fail.
local e = check_epoch(); if e then return e end
local nowms = now_ms()
local lkey = P .. 'leases'
local ended = redis.call('ZRANGEBYSCORE', lkey, '-inf', num(nowms), 'LIMIT', 0, tonumber(arg(1)))
local out, alo, cancelled = {}, {}, {}
-- The kept reports read by this call (feedback.lua `fb_kept_for`).
local taken = {}
-- First pass: read and decide, write nothing.
local plan = {}
for _, member in ipairs(ended) do
  local run, rcpt = split(member)
  if not run then return corrupt('leases: member ' .. member .. ' names no delivery') end
  local raw = redis.call('HGET', P .. 'dl:' .. run, rcpt)
  local st = raw and dec(raw)
  if raw and not st then return corrupt('dl:' .. run .. ' ' .. rcpt .. ': the state is not JSON') end
  -- A lease left behind by a delivery no longer sending is only dropped.
  local recover = st and st.s == 's'
  if recover and alo[run] == nil then
    alo[run] = redis.call('HGET', P .. 'run:' .. run, 'alo') == '1'
    cancelled[run] = redis.call('HGET', P .. 'run:' .. run, 'state') == 'cancelled'
  end
  local entry = { member = member, run = run, rcpt = rcpt, st = recover and st or nil }
  if recover and not alo[run] then
    -- Ended `unknown`, then what the reports kept for this delivery prove (feedback.lua).
    local back = { s = 'unknown', a = st.a, o = st.o, t = st.t, r = 1, f = nowms,
      m = 'interrupted while its request may have been in flight (the lease of '
        .. tostring(st.o) .. ' ended)' }
    entry.kept = fb_kept_for('', member, nowms, taken)
    entry.back = fb_fold(back, entry.kept)
  end
  plan[#plan + 1] = entry
end
-- Second pass: the writes.
fb_trim(nowms, tonumber(arg(2)))
for _, p in ipairs(plan) do
  redis.call('ZREM', lkey, p.member)
  local st = p.st
  if st then
    local run, rcpt, member = p.run, p.rcpt, p.member
    local rkey = P .. 'run:' .. run
    local back = { a = st.a, o = st.o, t = st.t, r = 1 }
    local requeued = alo[run] and not cancelled[run]
    if alo[run] and cancelled[run] then
      back.s, back.x, back.f = 'skipped', 'cancelled', nowms
      redis.call('ZADD', P .. 'done', num(nowms), member)
      if type(st.p) == 'string' then redis.call('ZREM', P .. 'hist:' .. st.p, member) end
      fb_move(rkey, st, back)
    elseif alo[run] then
      redis.call('HINCRBY', rkey, 'c:sending', -1)
      back.s, back.d = 'q', nowms
      redis.call('ZADD', P .. 'due:' .. run, num(nowms), rcpt)
      redis.call('SADD', P .. 'qruns', run) -- the run has queued work (src/keys.rs `qruns`)
      if type(st.p) == 'string' then redis.call('ZREM', P .. 'hist:' .. st.p, member) end
      redis.call('HINCRBY', rkey, 'c:queued', 1)
    else
      back = p.back
      redis.call('ZADD', P .. 'done', num(nowms), member)
      fb_move(rkey, st, back)
      fb_index(st, back, member)
      fb_forget(p.kept, '', member)
    end
    redis.call('HSET', P .. 'dl:' .. run, rcpt, enc(back))
    out[#out + 1] = run
    out[#out + 1] = rcpt
    out[#out + 1] = tostring(st.o)
    out[#out + 1] = requeued and 1 or 0
  end
end
return out
