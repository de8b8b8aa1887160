-- Ends up to `limit` queued deliveries of a cancelled run `skipped(cancelled)`, earliest due
-- first. Own args: run, limit; ended at the store's now. Returns how many are left queued in `due:<run>`.
-- Bounded per call so cancelling a million deliveries never blocks Redis: the caller repeats.
local e = check_epoch(); if e then return e end
local run = arg(1)
local rkey = P .. 'run:' .. run
if redis.call('HGET', rkey, 'state') ~= 'cancelled' then return 0 end
local due, dl = P .. 'due:' .. run, P .. 'dl:' .. run
local members = redis.call('ZRANGE', due, 0, tonumber(arg(2)) - 1)
local at = now_ms()
local ended = 0
for _, rcpt in ipairs(members) do
  local raw = redis.call('HGET', dl, rcpt)
  if raw then
    local st = cjson.decode(raw)
    if st.s == 'q' then
      local new = {s = 'skipped', x = 'cancelled', a = st.a, o = st.o, t = st.t, r = st.r, f = at}
      redis.call('HSET', dl, rcpt, enc_state(new))
      ended = ended + 1
      redis.call('ZADD', P .. 'done', at, run .. SEP .. rcpt)
    end
  end
end
if #members > 0 then redis.call('ZREM', due, unpack(members)) end
if ended > 0 then
  redis.call('HINCRBY', rkey, 'c:queued', -ended)
  redis.call('HINCRBY', rkey, 'c:skipped:cancelled', ended)
end
return redis.call('ZCARD', due)
