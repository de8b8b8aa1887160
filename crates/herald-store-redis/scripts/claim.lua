-- Deliveries::claim of one group (src/claims/claim.rs), timed by the store's now read once.
-- Own args: owner, lease ms, sender, GCRA interval µs, tier ('' for none), horizon µs, n, then n
-- times: run, recipient, consent channel, consent events seen, history since ms, sends seen.
-- Reply: { now µs, then per claim: code, value } with code 0 claimed (slot µs), 1 taken,
-- 2 run paused, 3 run cancelled, 4 consent changed, 5 cap changed, 6 tier full (frees ms),
-- 7 throttled (until ms), 8 blocked (reason), 9 rate ahead (next slot µs).
local e = check_epoch(); if e then return e end
local DAY = 86400000
local now = now_us()
local nowms = math.floor(now / 1000)
local owner, lease_end, sender = arg(1), nowms + tonumber(arg(2)), arg(3)
local interval, tier, horizon = tonumber(arg(4)), tonumber(arg(5)), tonumber(arg(6))
local count = tonumber(arg(7))
local skey, tkey = P .. 'sender:' .. sender, P .. 'tier:' .. sender
local sv = redis.call('HMGET', skey, 'tat', 'throttled', 'block_code', 'block_reason')
local tat0 = tonumber(sv[1])
local tat = tat0
local throttled = tonumber(sv[2])
local blocked = sv[3] and true or false
local block_reason = sv[4] or ''
-- The tier's moving window: phones whose latest slot left it are forgotten first.
redis.call('ZREMRANGEBYSCORE', tkey, '-inf', num(nowms - DAY))
local tier_count = redis.call('ZCARD', tkey)
local runs, moved = {}, {}

local function run_state(run)
  local s = runs[run]
  if s == nil then
    s = redis.call('HGET', P .. 'run:' .. run, 'state') or 'none'
    runs[run] = s
  end
  return s
end

-- One claim: its code and value, the grant's writes done; nil and a message when corrupt.
local function one(run, rcpt, channel, events, since, sends)
  local rs = run_state(run)
  if rs == 'none' then return 1, 0 end
  if rs == 'cancelled' then return 3, 0 end
  if rs ~= 'active' then return 2, 0 end
  if blocked then return 8, block_reason end
  if throttled and throttled > nowms then return 7, throttled end
  local dkey = P .. 'dl:' .. run
  local raw = redis.call('HGET', dkey, rcpt)
  if not raw then return 1, 0 end
  local st = dec(raw)
  if not st then return nil, 'dl:' .. run .. ' ' .. rcpt .. ': the state is not JSON' end
  if st.s ~= 'q' or type(st.d) ~= 'number' or st.d > nowms then return 1, 0 end
  local phone = st.p
  if type(phone) ~= 'string' then phone = snap_phone(run, rcpt) end
  if not phone then return nil, 'snap:' .. run .. ' ' .. rcpt .. ': a queued delivery without a phone' end
  if redis.call('HLEN', P .. 'consent:' .. channel .. ':' .. phone) ~= events then return 4, 0 end
  local hkey = P .. 'hist:' .. phone
  if redis.call('ZCOUNT', hkey, since, '+inf') ~= sends then return 5, 0 end
  local in_tier = redis.call('ZSCORE', tkey, phone)
  if tier and not in_tier and tier_count >= tier then
    local oldest = redis.call('ZRANGE', tkey, 0, 0, 'WITHSCORES')
    local frees = nowms
    if oldest[2] then frees = tonumber(oldest[2]) + DAY end
    return 6, frees
  end
  local slot = now
  if tat and tat > now then slot = tat end
  if slot - now > horizon then return 9, slot end
  local slot_ms = num(math.floor(slot / 1000))
  local member = run .. SEP .. rcpt
  redis.call('HSET', dkey, rcpt,
    enc({ s = 's', a = (tonumber(st.a) or 0) + 1, o = owner, l = lease_end, t = slot, p = phone }))
  redis.call('ZREM', P .. 'due:' .. run, rcpt)
  redis.call('ZADD', P .. 'leases', num(lease_end), member)
  redis.call('ZADD', hkey, slot_ms, member)
  redis.call('ZADD', tkey, 'GT', slot_ms, phone)
  redis.call('ZADD', P .. 'recent', 'GT', slot_ms, phone)
  if not in_tier then tier_count = tier_count + 1 end
  tat = slot + interval
  moved[run] = (moved[run] or 0) + 1
  return 0, slot
end

local out = { now }
local ahead = nil
for i = 0, count - 1 do
  local b = 7 + i * 6
  local code, val
  if ahead then
    code, val = 9, ahead
  else
    code, val = one(arg(b + 1), arg(b + 2), arg(b + 3), tonumber(arg(b + 4)), arg(b + 5),
      tonumber(arg(b + 6)))
    if code == nil then return corrupt(val) end
    if code == 9 then ahead = val end
  end
  out[#out + 1] = code
  out[#out + 1] = val
end
if tat ~= tat0 then redis.call('HSET', skey, 'tat', num(tat)) end
for run, n in pairs(moved) do
  local rkey = P .. 'run:' .. run
  redis.call('HINCRBY', rkey, 'c:queued', -n)
  redis.call('HINCRBY', rkey, 'c:sending', n)
end
return out
