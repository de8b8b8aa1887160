-- Fires::record_fire. Own args: campaign id, fire instant (unix seconds, decimal), the encoded
-- record (src/fires.rs), how many records a campaign keeps. Keys (src/keys.rs): `fires:<id>`
-- (zset, the fire instants) and `fire:<id>` (hash, instant → record).
-- Returns {1, record} when this call stored it, {0, stored record} when a record of that fire
-- existed (left unchanged). Storing one drops the campaign's oldest records beyond the kept
-- number, from both keys.
local e = check_epoch(); if e then return e end
local id, fire = arg(1), arg(2)
local index, data = P .. 'fires:' .. id, P .. 'fire:' .. id
local old = redis.call('HGET', data, fire)
if old then return {0, old} end
redis.call('HSET', data, fire, arg(3))
redis.call('ZADD', index, tonumber(fire), fire)
local keep = tonumber(arg(4))
local n = redis.call('ZCARD', index)
if n > keep then
  local drop = redis.call('ZRANGE', index, 0, n - keep - 1)
  redis.call('HDEL', data, unpack(drop))
  redis.call('ZREMRANGEBYRANK', index, 0, n - keep - 1)
end
return {1, arg(3)}
