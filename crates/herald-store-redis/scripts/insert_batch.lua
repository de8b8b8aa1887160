-- Deliveries::insert_batch, one chunk. Own args: 6 per row: run, rcpt, due ms ('' for a row
-- ended at expansion), state JSON (queued, or terminal without its `f`), snapshot JSON or '',
-- counter field (`c:queued`, `c:skipped:<reason>`, …).
-- Every run must exist (checked before anything is written: the chunk is all or nothing).
-- HSETNX `dl:<run>` is the dedupe: a row already there is left as it is. A queued row of a run
-- cancelled meanwhile goes in `skipped(cancelled)`, as the cancel would have ended it.
-- Returns {'ok', new rows} or {'nf', run}.
local e = check_epoch(); if e then return e end
local n = (#ARGV - 3) / 6
local states = {}
for i = 0, n - 1 do
  local run = arg(i * 6 + 1)
  if states[run] == nil then
    local st = redis.call('HGET', P .. 'run:' .. run, 'state')
    if not st then return {'nf', run} end
    states[run] = st
  end
end
local now = now_ms()
local tally = {}
local inserted = 0
for i = 0, n - 1 do
  local b = i * 6
  local run, rcpt, due, state, snap, ctr = arg(b + 1), arg(b + 2), arg(b + 3), arg(b + 4), arg(b + 5), arg(b + 6)
  local queued = due ~= ''
  if queued and states[run] == 'cancelled' then
    state = enc_state({s = 'skipped', x = 'cancelled', a = 0, f = now})
    ctr = 'c:skipped:cancelled'
    queued = false
  elseif not queued then
    state = '{"f":' .. string.format('%d', now) .. ',' .. string.sub(state, 2)
  end
  if redis.call('HSETNX', P .. 'dl:' .. run, rcpt, state) == 1 then
    inserted = inserted + 1
    if queued then
      if snap ~= '' then redis.call('HSET', P .. 'snap:' .. run, rcpt, snap) end
      redis.call('ZADD', P .. 'due:' .. run, due, rcpt)
    else
      redis.call('ZADD', P .. 'done', now, run .. SEP .. rcpt)
    end
    local t = tally[run]
    if not t then t = {}; tally[run] = t end
    t[ctr] = (t[ctr] or 0) + 1
  end
end
for run, t in pairs(tally) do
  for ctr, k in pairs(t) do redis.call('HINCRBY', P .. 'run:' .. run, ctr, k) end
end
return {'ok', inserted}
