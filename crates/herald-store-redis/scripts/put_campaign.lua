-- Fires::put_campaign. Own args: campaign id, hash, text, source, stored_at (RFC 3339), the most
-- campaigns a store holds. Keys (src/keys.rs): `campaign:<id>` (hash, text, source, at) and
-- the index `campaigns`. Reads and checks before its first write.
-- Returns {'added'}, {'unchanged'}, {'replaced', previous hash} or {'full'} (a new id while
-- the index holds the most campaigns already: nothing written).
local e = check_epoch(); if e then return e end
local id = arg(1)
local key = P .. 'campaign:' .. id
local old = redis.call('HGET', key, 'hash')
if not old then
  if redis.call('EXISTS', key) == 1 then
    return redis.error_reply('CORRUPT campaign:' .. id .. ': a campaign version without its hash')
  end
  if redis.call('SISMEMBER', P .. 'campaigns', id) == 0
    and redis.call('SCARD', P .. 'campaigns') >= tonumber(arg(6)) then
    return {'full'}
  end
  redis.call('HSET', key, 'hash', arg(2), 'text', arg(3), 'source', arg(4), 'at', arg(5))
  redis.call('SADD', P .. 'campaigns', id)
  return {'added'}
end
if old == arg(2) then return {'unchanged'} end
redis.call('HSET', key, 'hash', arg(2), 'text', arg(3), 'source', arg(4), 'at', arg(5))
redis.call('SADD', P .. 'campaigns', id)
return {'replaced', old}
