-- Deliveries::renew: the owner's still-sending claims get lease end = the store's now + lease.
-- Own args: owner, lease ms, n, then n times: run, recipient. Reply: how many were renewed.
-- Lua in Redis has no rollback: every state is decoded first, and one that does not decode is
-- a `CORRUPT` error with no lease renewed; only then are the leases written.
local e = check_epoch(); if e then return e end
local owner, lease_end, count = arg(1), now_ms() + tonumber(arg(2)), tonumber(arg(3))
-- First pass: decode and decide, write nothing.
local renewing = {}
for i = 0, count - 1 do
  local run, rcpt = arg(4 + 2 * i), arg(5 + 2 * i)
  local dkey = P .. 'dl:' .. run
  local raw = redis.call('HGET', dkey, rcpt)
  if raw then
    local st = dec(raw)
    if not st then return corrupt('dl:' .. run .. ' ' .. rcpt .. ': the state is not JSON') end
    if st.s == 's' and st.o == owner then
      st.l = lease_end
      renewing[#renewing + 1] = { dkey, rcpt, enc(st), run .. SEP .. rcpt }
    end
  end
end
-- Second pass: the writes.
for _, r in ipairs(renewing) do
  redis.call('HSET', r[1], r[2], r[3])
  redis.call('ZADD', P .. 'leases', 'XX', num(lease_end), r[4])
end
return #renewing
