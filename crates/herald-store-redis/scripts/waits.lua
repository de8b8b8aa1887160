-- Deliveries::waits, one chunk (reads only). Own args: run, now ms, before ms or '', offset
-- (among the deliveries due after now), chunk size. Returns {} for no such run, else
-- {run state, due by now, first due ms or '', looked at, reason, count, earliest ms, …}: the
-- reasons of the chunk of queued deliveries due after now (and before `before`), from
-- `offset` on. A paused run needs no walk (all of its queue waits for an operator).
local run, now = arg(1), tonumber(arg(2))
local before = arg(3) == '' and '+inf' or '(' .. arg(3)
local state = redis.call('HGET', P .. 'run:' .. run, 'state')
if not state then return {} end
local due = P .. 'due:' .. run
local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
local out = {state, 0, first[2] or '', 0}
if state == 'paused' then
  out[2] = redis.call('ZCOUNT', due, '-inf', before)
  return out
end
if arg(3) ~= '' and tonumber(arg(3)) <= now then
  out[2] = redis.call('ZCOUNT', due, '-inf', before)
  return out
end
out[2] = redis.call('ZCOUNT', due, '-inf', now)
-- The deliveries due after now and before `before` are those of ranks [due by now, end): walked
-- by rank, so each chunk costs O(log n + chunk) however far into the queue it is.
local last = redis.call('ZCOUNT', due, '-inf', before) - 1
local from = out[2] + tonumber(arg(4))
local to = math.min(from + tonumber(arg(5)) - 1, last)
local rows = {}
if from <= to then rows = redis.call('ZRANGE', due, from, to, 'WITHSCORES') end
local groups, order = {}, {}
for i = 1, #rows, 2 do
  local raw = redis.call('HGET', P .. 'dl:' .. run, rows[i])
  local w = ''
  if raw then w = cjson.decode(raw).w or '' end
  local at = tonumber(rows[i + 1])
  local g = groups[w]
  if not g then g = {0, at}; groups[w] = g; order[#order + 1] = w end
  g[1] = g[1] + 1
  if at < g[2] then g[2] = at end
end
out[4] = #rows / 2
for _, w in ipairs(order) do
  out[#out + 1] = w
  out[#out + 1] = groups[w][1]
  out[#out + 1] = string.format('%d', groups[w][2])
end
return out
