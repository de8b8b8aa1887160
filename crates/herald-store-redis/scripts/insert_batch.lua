-- Deliveries::insert_batch, one chunk. Own args: 6 per row: run, rcpt, due ms ('' for a row
-- ended at expansion), state JSON (queued, or terminal without its `f`), snapshot JSON or '',
-- counter field (`c:queued`, `c:skipped:<reason>`, …).
-- Every run must exist (checked before anything is written: the chunk is all or nothing).
-- `dl:<run>` is the dedupe: a row already there is left as it is. A queued row of a run
-- cancelled meanwhile goes in `skipped(cancelled)`, as the cancel would have ended it.
-- Returns {'ok', new rows} or {'nf', run}.
local e = check_epoch(); if e then return e end
local n = (#ARGV - 3) / 6
local states_of_runs = {}
for i = 0, n - 1 do
  local run = arg(i * 6 + 1)
  if states_of_runs[run] == nil then
    local st = redis.call('HGET', P .. 'run:' .. run, 'state')
    if not st then return {'nf', run} end
    states_of_runs[run] = st
  end
end
local now = now_ms()
local now_text = string.format('%d', now)
-- Commands are issued per key, not per row (a command per row costs more than the row's own
-- work): one HMGET per run tells which rows exist (the dedupe; a recipient twice in the chunk
-- keeps its first row, as HSETNX would), then one HSET per hash and one ZADD per zset write the
-- new rows, in slices of at most 1,000 pairs, well inside Lua's stack.
local function in_slices(cmd, key, list)
  for i = 1, #list, 2000 do
    redis.call(cmd, key, unpack(list, i, math.min(i + 1999, #list)))
  end
end
local per_run, order = {}, {}
for i = 0, n - 1 do
  local run = arg(i * 6 + 1)
  local r = per_run[run]
  if not r then
    r = {rows = {}}
    per_run[run] = r
    order[#order + 1] = run
  end
  r.rows[#r.rows + 1] = i * 6
end
local done = {}
local inserted = 0
for _, run in ipairs(order) do
  local r = per_run[run]
  local exists = {}
  for i = 1, #r.rows, 1000 do
    local names = {}
    for j = i, math.min(i + 999, #r.rows) do names[#names + 1] = arg(r.rows[j] + 2) end
    local found = redis.call('HMGET', P .. 'dl:' .. run, unpack(names))
    for j = 1, #names do
      if found[j] then exists[names[j]] = true end
    end
  end
  local states, snaps, dues, tally = {}, {}, {}, {}
  local cancelled = states_of_runs[run] == 'cancelled'
  for _, b in ipairs(r.rows) do
    local rcpt, due, state, snap, ctr = arg(b + 2), arg(b + 3), arg(b + 4), arg(b + 5), arg(b + 6)
    if not exists[rcpt] then
      exists[rcpt] = true
      inserted = inserted + 1
      local queued = due ~= ''
      if queued and cancelled then
        state = enc_state({s = 'skipped', x = 'cancelled', a = 0, f = now})
        ctr = 'c:skipped:cancelled'
        queued = false
      elseif not queued then
        state = '{"f":' .. now_text .. ',' .. string.sub(state, 2)
      end
      states[#states + 1] = rcpt
      states[#states + 1] = state
      if queued then
        if snap ~= '' then
          snaps[#snaps + 1] = rcpt
          snaps[#snaps + 1] = snap
        end
        dues[#dues + 1] = due
        dues[#dues + 1] = rcpt
      else
        done[#done + 1] = now
        done[#done + 1] = run .. SEP .. rcpt
      end
      tally[ctr] = (tally[ctr] or 0) + 1
    end
  end
  in_slices('HSET', P .. 'dl:' .. run, states)
  in_slices('HSET', P .. 'snap:' .. run, snaps)
  in_slices('ZADD', P .. 'due:' .. run, dues)
  for ctr, k in pairs(tally) do redis.call('HINCRBY', P .. 'run:' .. run, ctr, k) end
end
in_slices('ZADD', P .. 'done', done)
return {'ok', inserted}
