-- Deliveries::recover_expired: up to `limit` sending deliveries whose lease ended by the store's
-- now, each ended `unknown` or, for an at_least_once run, queued due at once with its history
-- entry removed; `r` = 1 either way. Own args: limit.
-- Reply: flat { run, recipient, owner, requeued (0/1) } per recovered delivery.
local e = check_epoch(); if e then return e end
local nowms = now_ms()
local lkey = P .. 'leases'
local ended = redis.call('ZRANGEBYSCORE', lkey, '-inf', num(nowms), 'LIMIT', 0, tonumber(arg(1)))
local out, alo = {}, {}
for _, member in ipairs(ended) do
  local run, rcpt = split(member)
  if not run then return corrupt('leases: member ' .. member .. ' names no delivery') end
  local dkey = P .. 'dl:' .. run
  local raw = redis.call('HGET', dkey, rcpt)
  local st = raw and dec(raw)
  if raw and not st then return corrupt('dl:' .. run .. ' ' .. rcpt .. ': the state is not JSON') end
  redis.call('ZREM', lkey, member)
  -- A lease left behind by a delivery no longer sending is only dropped.
  if st and st.s == 's' then
    local rkey = P .. 'run:' .. run
    if alo[run] == nil then alo[run] = redis.call('HGET', rkey, 'alo') == '1' end
    local back = { a = st.a, o = st.o, t = st.t, r = 1 }
    redis.call('HINCRBY', rkey, 'c:sending', -1)
    if alo[run] then
      back.s, back.d = 'q', nowms
      redis.call('ZADD', P .. 'due:' .. run, num(nowms), rcpt)
      if type(st.p) == 'string' then redis.call('ZREM', P .. 'hist:' .. st.p, member) end
      redis.call('HINCRBY', rkey, 'c:queued', 1)
    else
      back.s, back.f = 'unknown', nowms
      back.m = 'interrupted while its request may have been in flight (the lease of '
        .. tostring(st.o) .. ' ended)'
      redis.call('ZADD', P .. 'done', num(nowms), member)
      redis.call('HINCRBY', rkey, 'c:unknown', 1)
    end
    redis.call('HSET', dkey, rcpt, enc(back))
    out[#out + 1] = run
    out[#out + 1] = rcpt
    out[#out + 1] = tostring(st.o)
    out[#out + 1] = alo[run] and 1 or 0
  end
end
return out
