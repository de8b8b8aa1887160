-- Ends up to `limit` queued deliveries of a cancelled run `skipped(cancelled)`, earliest due
-- first. Own args: run, limit; ended at the store's now. Returns how many are left queued in `due:<run>`.
-- Bounded per call so cancelling a million deliveries never blocks Redis: the caller repeats.
-- Lua in Redis has no rollback: every state of the chunk is decoded first, and a state that
-- does not decode is a `CORRUPT` error with nothing written (a chunk stopped halfway would
-- leave deliveries ended but still counted queued, which no later cancel repairs). Only then
-- are the states, `done`, `due` and the counters written, none of which can fail.
local e = check_epoch(); if e then return e end
local run = arg(1)
local rkey = P .. 'run:' .. run
if redis.call('HGET', rkey, 'state') ~= 'cancelled' then return 0 end
local due, dl = P .. 'due:' .. run, P .. 'dl:' .. run
local members = redis.call('ZRANGE', due, 0, tonumber(arg(2)) - 1)
local at = now_ms()
-- First pass: decode and decide, write nothing.
local ending = {}
for _, rcpt in ipairs(members) do
  local raw = redis.call('HGET', dl, rcpt)
  if raw then
    local st = dec_state(raw)
    if not st then return corrupt('dl:' .. run .. ' ' .. rcpt .. ': the state is not JSON') end
    if st.s == 'q' then
      local new = {s = 'skipped', x = 'cancelled', a = st.a, o = st.o, t = st.t, r = st.r, f = at}
      ending[#ending + 1] = { rcpt, enc_state(new) }
    end
  end
end
-- Second pass: the writes.
for _, e in ipairs(ending) do
  redis.call('HSET', dl, e[1], e[2])
  redis.call('ZADD', P .. 'done', at, run .. SEP .. e[1])
end
if #members > 0 then redis.call('ZREM', due, unpack(members)) end
if #ending > 0 then
  redis.call('HINCRBY', rkey, 'c:queued', -#ending)
  redis.call('HINCRBY', rkey, 'c:skipped:cancelled', #ending)
end
return redis.call('ZCARD', due)
