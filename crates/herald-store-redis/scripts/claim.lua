-- Deliveries::claim of one group (src/claims/claim.rs), timed by the store's now read once.
-- Own args: owner, lease ms, sender, GCRA interval µs, tier ('' for none), horizon µs, n, then n
-- times: run, recipient, consent channel, consent events seen, history since ms, sends seen.
-- Reply: { now µs, then per claim: code, value } with code 0 claimed (slot µs), 1 taken,
-- 2 run paused, 3 run cancelled, 4 consent changed, 5 cap changed, 6 tier full (frees ms),
-- 7 throttled (until ms), 8 blocked (reason), 9 rate ahead (next slot µs).
local e = check_epoch(); if e then return e end
-- Lua in Redis has no rollback, so the script is in two passes: the first reads and decides
-- every claim of the group (states decoded, phones found, every check, the slots and the tier's
-- admissions computed in memory, the group's own grants seen by its later claims through
-- overlays); only when nothing is corrupt does the second pass write, with writes that cannot
-- fail. A corrupt state anywhere in the group is a `CORRUPT` error with nothing written.
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
-- The tier's moving window: phones whose latest slot left it (score <= window) are not in it;
-- the second pass trims them, so the first reads around them.
local window = nowms - DAY
local after_window = '(' .. num(window)
local tier_count = redis.call('ZCOUNT', tkey, after_window, '+inf')
local runs = {}
-- The group's own grants, for its later claims: deliveries claimed, per phone the slots (ms)
-- added to its history, the tier's phones admitted or moved (phone -> slot ms).
local claimed, hist_added, tier_added = {}, {}, {}
local tier_added_n = 0
-- The second pass's work: one entry per grant.
local grants = {}

local function run_state(run)
  local s = runs[run]
  if s == nil then
    s = redis.call('HGET', P .. 'run:' .. run, 'state') or 'none'
    runs[run] = s
  end
  return s
end

-- The tier's phone with the lowest latest slot as the group's grants leave it: its slot (ms),
-- or nil for an empty tier.
local function tier_oldest()
  local oldest = nil
  local stored = redis.call('ZRANGEBYSCORE', tkey, after_window, '+inf', 'WITHSCORES', 'LIMIT', 0,
    tier_added_n + 1)
  for i = 1, #stored, 2 do
    if tier_added[stored[i]] == nil then
      oldest = tonumber(stored[i + 1])
      break
    end
  end
  for phone, slot in pairs(tier_added) do
    local score = tonumber(redis.call('ZSCORE', tkey, phone))
    if score and score > window and score > slot then slot = score end
    if oldest == nil or slot < oldest then oldest = slot end
  end
  return oldest
end

-- One claim decided: its code and value, a grant queued for the second pass; nil and a
-- message when corrupt. Reads only.
local function one(run, rcpt, channel, events, since, sends)
  local rs = run_state(run)
  if rs == 'none' then return 1, 0 end
  if rs == 'cancelled' then return 3, 0 end
  if rs ~= 'active' then return 2, 0 end
  if blocked then return 8, block_reason end
  if throttled and throttled > nowms then return 7, throttled end
  local member = run .. SEP .. rcpt
  if claimed[member] then return 1, 0 end
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
  local seen = redis.call('ZCOUNT', hkey, since, '+inf')
  for _, slot_ms in ipairs(hist_added[phone] or {}) do
    if slot_ms >= tonumber(since) then seen = seen + 1 end
  end
  if seen ~= sends then return 5, 0 end
  local in_tier = tier_added[phone] ~= nil
  if not in_tier then
    local score = tonumber(redis.call('ZSCORE', tkey, phone))
    in_tier = score ~= nil and score > window
  end
  if tier and not in_tier and tier_count >= tier then
    local oldest = tier_oldest()
    local frees = nowms
    if oldest then frees = oldest + DAY end
    return 6, frees
  end
  local slot = now
  if tat and tat > now then slot = tat end
  if slot - now > horizon then return 9, slot end
  local slot_ms = math.floor(slot / 1000)
  claimed[member] = true
  local added = hist_added[phone] or {}
  added[#added + 1] = slot_ms
  hist_added[phone] = added
  if tier_added[phone] == nil then tier_added_n = tier_added_n + 1 end
  if tier_added[phone] == nil or tier_added[phone] < slot_ms then tier_added[phone] = slot_ms end
  if not in_tier then tier_count = tier_count + 1 end
  tat = slot + interval
  grants[#grants + 1] = { run = run, rcpt = rcpt, member = member, phone = phone, slot = slot,
    slot_ms = num(slot_ms), state = enc({ s = 's', a = (tonumber(st.a) or 0) + 1, o = owner,
      l = lease_end, t = slot, p = phone }) }
  return 0, slot
end

-- First pass: decide every claim, write nothing.
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

-- Second pass: the writes, none of which can fail.
redis.call('ZREMRANGEBYSCORE', tkey, '-inf', num(window))
local moved = {}
for _, g in ipairs(grants) do
  redis.call('HSET', P .. 'dl:' .. g.run, g.rcpt, g.state)
  redis.call('ZREM', P .. 'due:' .. g.run, g.rcpt)
  redis.call('ZADD', P .. 'leases', num(lease_end), g.member)
  redis.call('ZADD', P .. 'hist:' .. g.phone, g.slot_ms, g.member)
  redis.call('ZADD', tkey, 'GT', g.slot_ms, g.phone)
  redis.call('ZADD', P .. 'recent', 'GT', g.slot_ms, g.phone)
  moved[g.run] = (moved[g.run] or 0) + 1
end
if tat ~= tat0 then redis.call('HSET', skey, 'tat', num(tat)) end
for run, n in pairs(moved) do
  local rkey = P .. 'run:' .. run
  redis.call('HINCRBY', rkey, 'c:queued', -n)
  redis.call('HINCRBY', rkey, 'c:sending', n)
end
return out
