-- Fires::fires (reads only). Own args: campaign id, how many (at least 1, at most the kept
-- number). Returns {instant, record, instant, record, …}, newest fire first; an instant of the
-- index without its record is a `CORRUPT` error.
local id = arg(1)
local index, data = P .. 'fires:' .. id, P .. 'fire:' .. id
local fires = redis.call('ZREVRANGE', index, 0, tonumber(arg(2)) - 1)
local out = {}
for _, fire in ipairs(fires) do
  local record = redis.call('HGET', data, fire)
  if not record then
    return redis.error_reply('CORRUPT fire:' .. id .. '/' .. fire .. ': an indexed fire without its record')
  end
  out[#out + 1] = fire
  out[#out + 1] = record
end
return out
