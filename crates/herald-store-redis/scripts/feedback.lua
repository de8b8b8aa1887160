-- Provider feedback (src/feedback.rs; keys in src/keys.rs "Provider feedback"): the ladder a
-- status report moves a delivery along, the message-id index and the kept early reports.
-- Prepended after the state helpers (state.lua or claim_state.lua) by record_status.lua,
-- change.lua and recover_expired.lua, so the ladder is written once. Self-contained: it uses
-- neither helper file's encoder; callers encode the states it returns.
--
-- A report, as src/feedback.rs encodes it (the kept zset's member is that exact text):
--   {"i":"<provider id>","k":"<run>SEP<rcpt>"|absent,"s":"sent|delivered|read|failed",
--    "c":"<code>"|absent,"a":<instant ms>}
local FB_RANK = {sent = 0, delivered = 1, read = 2}
local FB_KEPT = P .. 'kept'

local function fb_copy(st)
  local n = {}
  for k, v in pairs(st) do n[k] = v end
  return n
end

-- The counter field of a state (as state.lua's `counter`).
local function fb_counter(st)
  local s = st.s
  if s == 'q' then return 'c:queued' end
  if s == 's' then return 'c:sending' end
  if s == 'failed' or s == 'skipped' then return 'c:' .. s .. ':' .. tostring(st.x) end
  return 'c:' .. s
end

-- Whether a state counts as delivered, and as read (1/0): `sent` at that rung or above.
local function fb_rungs(st)
  if st.s ~= 'sent' then return 0, 0 end
  local r = FB_RANK[st.g or 'sent'] or 0
  return (r >= 1) and 1 or 0, (r >= 2) and 1 or 0
end

-- Moves the run's counters from state `from` to state `to`: the state's counter and
-- `c:delivered`/`c:read` (src/keys.rs `run:<run>`).
local function fb_move(rkey, from, to)
  local a, b = fb_counter(from), fb_counter(to)
  if a ~= b then
    redis.call('HINCRBY', rkey, a, -1)
    redis.call('HINCRBY', rkey, b, 1)
  end
  local d1, r1 = fb_rungs(from)
  local d2, r2 = fb_rungs(to)
  if d2 ~= d1 then redis.call('HINCRBY', rkey, 'c:delivered', d2 - d1) end
  if r2 ~= r1 then redis.call('HINCRBY', rkey, 'c:read', r2 - r1) end
end

-- A decoded report, or nil when the text is not one (never written by this crate).
local function fb_report(raw)
  local ok, r = pcall(cjson.decode, raw)
  if not ok or type(r) ~= 'table' or type(r.i) ~= 'string' or type(r.s) ~= 'string' then
    return nil
  end
  if r.s ~= 'failed' and FB_RANK[r.s] == nil then return nil end
  if r.s == 'failed' and type(r.c) ~= 'string' then return nil end
  if type(r.k) ~= 'string' then r.k = nil end
  if type(r.a) ~= 'number' then r.a = 0 end
  return r
end

-- The ladder (src/herald-store feedback.rs, "The ladder"): what report `r` makes of state `st`.
-- Returns the verdict ('applied', 'unchanged', 'refused' or 'kept') and, when applied, the new
-- state (a copy; `st` is not changed). `i` in a state is the provider id the index holds for it.
local function fb_ladder(st, r)
  local s = st.s
  -- Being sent: the worker's outcome is on its way, the report waits for it.
  if s == 's' then return 'kept' end
  -- Queued, or a terminal state compacted to its tombstone (no `f`): nothing to move.
  if st.f == nil then
    if s == 'sent' or s == 'failed' then return 'unchanged' end
    return 'refused'
  end
  if s == 'sent' then
    -- A sent message reported under another id (a callback naming it) is not this report's
    -- message: refused, as in SQLite.
    if type(st.i) == 'string' and st.i ~= '' and r.i and r.i ~= '' and st.i ~= r.i then
      return 'refused'
    end
    local cur = FB_RANK[st.g or 'sent'] or 0
    if r.s == 'failed' then
      -- A delivered or read message stays so.
      if cur > 0 then return 'unchanged' end
      local n = fb_copy(st)
      n.s, n.x, n.g, n.i = 'failed', r.c, nil, st.i or r.i
      return 'applied', n
    end
    if FB_RANK[r.s] <= cur then return 'unchanged' end
    local n = fb_copy(st)
    n.g, n.i = r.s, st.i or r.i
    return 'applied', n
  end
  if s == 'unknown' then
    -- The report proves what happened to the request the crash left in doubt.
    local n = fb_copy(st)
    n.i, n.m = r.i, r.i
    if r.s == 'failed' then
      n.s, n.x = 'failed', r.c
    else
      n.s = 'sent'
      if FB_RANK[r.s] > 0 then n.g = r.s end
    end
    return 'applied', n
  end
  -- Failed after it was sent (by a report: the index holds it): past anything a report says.
  if s == 'failed' and type(st.i) == 'string' then return 'unchanged' end
  -- Skipped, expired, failed by the provider's synchronous answer.
  return 'refused'
end

-- The kept reports for provider id `pid` ('' for none) and delivery `member`, each once per
-- script (`taken`: text -> true, shared by the calls of one script so two writes in one batch
-- never both apply a report), in the order they arrived (their expiry is arrival + TTL; the
-- provider's instant, then the rung, break ties within a millisecond).
-- Entries: {raw = text, r = report or nil (not one), live = not expired at `nowms`}.
local function fb_kept_for(pid, member, nowms, taken)
  local raws = {}
  local function add(list)
    for _, raw in ipairs(list) do
      if not taken[raw] then
        taken[raw] = true
        raws[#raws + 1] = raw
      end
    end
  end
  if pid ~= '' then add(redis.call('SMEMBERS', FB_KEPT .. ':i:' .. pid)) end
  add(redis.call('SMEMBERS', FB_KEPT .. ':k:' .. member))
  local list = {}
  for _, raw in ipairs(raws) do
    local score = redis.call('ZSCORE', FB_KEPT, raw)
    score = score and tonumber(score) or 0
    list[#list + 1] = { raw = raw, r = fb_report(raw), live = score > nowms, at = score }
  end
  local function order(e)
    if not e.r then return e.at, 0, 99 end
    return e.at, e.r.a, FB_RANK[e.r.s] or 3
  end
  table.sort(list, function(x, y)
    local xs, xa, xr = order(x)
    local ys, ya, yr = order(y)
    if xs ~= ys then return xs < ys end
    if xa ~= ya then return xa < ya end
    if xr ~= yr then return xr < yr end
    return x.raw < y.raw
  end)
  return list
end

-- What the live reports of `list` make of state `st`, one after the other under the ladder.
local function fb_fold(st, list)
  local cur = st
  for _, e in ipairs(list) do
    if e.live and e.r then
      local verdict, n = fb_ladder(cur, e.r)
      if verdict == 'applied' then cur = n end
    end
  end
  return cur
end

-- Forgets the reports of `list` (applied, outlived or unreadable): write pass only.
local function fb_forget(list, pid, member)
  for _, e in ipairs(list) do
    redis.call('ZREM', FB_KEPT, e.raw)
    if pid ~= '' then redis.call('SREM', FB_KEPT .. ':i:' .. pid, e.raw) end
    redis.call('SREM', FB_KEPT .. ':k:' .. member, e.raw)
    if e.r then
      redis.call('SREM', FB_KEPT .. ':i:' .. e.r.i, e.raw)
      if e.r.k then redis.call('SREM', FB_KEPT .. ':k:' .. e.r.k, e.raw) end
    end
  end
end

-- Drops up to `limit` kept reports expired at `nowms` (score = received + TTL): write pass.
local function fb_trim(nowms, limit)
  local old = redis.call('ZRANGEBYSCORE', FB_KEPT, '-inf', string.format('%d', nowms),
    'LIMIT', 0, limit)
  for _, raw in ipairs(old) do
    local r = fb_report(raw)
    if r then
      redis.call('SREM', FB_KEPT .. ':i:' .. r.i, raw)
      if r.k then redis.call('SREM', FB_KEPT .. ':k:' .. r.k, raw) end
    end
    redis.call('ZREM', FB_KEPT, raw)
  end
end

-- Indexes a state's provider id for `member` when the state gained one: write pass.
local function fb_index(from, to, member)
  if type(to.i) == 'string' and to.i ~= '' and to.i ~= from.i then
    redis.call('HSET', P .. 'mid', to.i, member)
  end
end
