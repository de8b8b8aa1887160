-- Deliveries::renew: the owner's still-sending claims get lease end = the store's now + lease.
-- Own args: owner, lease ms, n, then n times: run, recipient. Reply: how many were renewed.
local e = check_epoch(); if e then return e end
local owner, lease_end, count = arg(1), now_ms() + tonumber(arg(2)), tonumber(arg(3))
local renewed = 0
for i = 0, count - 1 do
  local run, rcpt = arg(4 + 2 * i), arg(5 + 2 * i)
  local dkey = P .. 'dl:' .. run
  local raw = redis.call('HGET', dkey, rcpt)
  if raw then
    local st = dec(raw)
    if not st then return corrupt('dl:' .. run .. ' ' .. rcpt .. ': the state is not JSON') end
    if st.s == 's' and st.o == owner then
      st.l = lease_end
      redis.call('HSET', dkey, rcpt, enc(st))
      redis.call('ZADD', P .. 'leases', 'XX', num(lease_end), run .. SEP .. rcpt)
      renewed = renewed + 1
    end
  end
end
return renewed
