-- Compaction (src/claims/compact.rs): up to `limit` deliveries that became terminal before the
-- store's now − retention lose their snapshot and their state. The `dl:<run>` field is the
-- (run, recipient) dedupe, so it goes only once the run's expansion is finished (`total` set:
-- insert_batch then refuses every row the run lacks); until then it is reduced to a tombstone
-- (the state name and reason or code, `{"s":"sent"}`), or a resumed expansion would queue the
-- delivery again. The delivery's provider-id index entry (`mid`) goes with it. The run's
-- counters and the phones' send history stay; history older than the store's now − keep is
-- trimmed, and `recent` below now − recent keep.
-- Own args: retention ms, limit, history keep ms, recent keep ms. Reply: how many deliveries
-- were compacted.
local e = check_epoch(); if e then return e end
local nowms = now_ms()
local dkey_done = P .. 'done'
local old = redis.call('ZRANGEBYSCORE', dkey_done, '-inf', num(nowms - tonumber(arg(1))),
  'LIMIT', 0, tonumber(arg(2)))
local horizon = '(' .. num(nowms - tonumber(arg(3)))
local trimmed, compacted, sealed = {}, 0, {}
for _, member in ipairs(old) do
  local run, rcpt = split(member)
  if run then
    local dkey = P .. 'dl:' .. run
    local raw = redis.call('HGET', dkey, rcpt)
    local st = raw and dec(raw)
    -- Only a terminal delivery is compacted: a queued or sending one listed here by mistake
    -- keeps everything, and so does a state that does not read back (it is still the dedupe,
    -- and an operator's to look at).
    if st and type(st.s) == 'string' and st.s ~= 'q' and st.s ~= 's' then
      local phone = type(st.p) == 'string' and st.p or snap_phone(run, rcpt)
      -- The provider-id index entry goes with the delivery (src/keys.rs `mid`): `i`, or the
      -- detail of a `sent` indexed by the layout 2 upgrade; only if it still names this one.
      local pid = st.i
      if type(pid) ~= 'string' and st.s == 'sent' then pid = st.m end
      if type(pid) == 'string' and redis.call('HGET', P .. 'mid', pid) == member then
        redis.call('HDEL', P .. 'mid', pid)
      end
      redis.call('HDEL', P .. 'snap:' .. run, rcpt)
      if sealed[run] == nil then
        sealed[run] = redis.call('HEXISTS', P .. 'run:' .. run, 'total') == 1
      end
      if sealed[run] then
        redis.call('HDEL', dkey, rcpt)
      else
        -- Written by hand rather than by enc(), whose field order follows Lua's table order.
        local tomb = '{"s":' .. cjson.encode(st.s)
        if type(st.x) == 'string' then tomb = tomb .. ',"x":' .. cjson.encode(st.x) end
        redis.call('HSET', dkey, rcpt, tomb .. '}')
      end
      if phone and not trimmed[phone] then
        redis.call('ZREMRANGEBYSCORE', P .. 'hist:' .. phone, '-inf', horizon)
        trimmed[phone] = true
      end
      compacted = compacted + 1
    end
  end
  redis.call('ZREM', dkey_done, member)
end
redis.call('ZREMRANGEBYSCORE', P .. 'recent', '-inf', '(' .. num(nowms - tonumber(arg(4))))
return compacted
