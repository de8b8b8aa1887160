-- Deliveries::counts (reads only). Own args: run. Returns {} for no such run, else
-- {first due ms or '', due within the hour from it, field, value, field, value, …} with the
-- run's counters (`c:*`).
local run = arg(1)
local key = P .. 'run:' .. run
if redis.call('EXISTS', key) == 0 then return {} end
local out = {'', 0}
local first = redis.call('ZRANGE', P .. 'due:' .. run, 0, 0, 'WITHSCORES')
if #first > 0 then
  local at = tonumber(first[2])
  out[1] = string.format('%d', at)
  out[2] = redis.call('ZCOUNT', P .. 'due:' .. run, at, '(' .. string.format('%d', at + 3600000))
end
local all = redis.call('HGETALL', key)
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 'c:' then
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return out
