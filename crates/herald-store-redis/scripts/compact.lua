-- Compaction (src/claims/compact.rs): up to `limit` deliveries that became terminal before the
-- store's now − retention lose their snapshot and state; the run's counters and the phones'
-- send history stay, history older than the store's now − keep is trimmed.
-- Own args: retention ms, limit, history keep ms. Reply: how many deliveries were compacted.
local e = check_epoch(); if e then return e end
local nowms = now_ms()
local dkey_done = P .. 'done'
local old = redis.call('ZRANGEBYSCORE', dkey_done, '-inf', num(nowms - tonumber(arg(1))),
  'LIMIT', 0, tonumber(arg(2)))
local horizon = '(' .. num(nowms - tonumber(arg(3)))
local trimmed, compacted = {}, 0
for _, member in ipairs(old) do
  local run, rcpt = split(member)
  if run then
    local dkey = P .. 'dl:' .. run
    local raw = redis.call('HGET', dkey, rcpt)
    local st = raw and dec(raw)
    -- Only a terminal delivery is compacted: a queued or sending one listed here by mistake
    -- keeps everything.
    if not st or (st.s ~= 'q' and st.s ~= 's') then
      local phone = st and type(st.p) == 'string' and st.p or snap_phone(run, rcpt)
      redis.call('HDEL', P .. 'snap:' .. run, rcpt)
      redis.call('HDEL', dkey, rcpt)
      if phone and not trimmed[phone] then
        redis.call('ZREMRANGEBYSCORE', P .. 'hist:' .. phone, '-inf', horizon)
        trimmed[phone] = true
      end
      compacted = compacted + 1
    end
  end
  redis.call('ZREM', dkey_done, member)
end
redis.call('ZREMRANGEBYSCORE', P .. 'recent', '-inf', horizon)
return compacted
