-- Feedback::add_tag. Own args: phone (E.164), tag, the most tags a phone holds.
-- Returns 1 when stored, 0 when the phone held it already, -1 when the phone is full.
local e = check_epoch(); if e then return e end
local key = P .. 'tags:' .. arg(1)
if redis.call('SISMEMBER', key, arg(2)) == 1 then return 0 end
if redis.call('SCARD', key) >= tonumber(arg(3)) then return -1 end
redis.call('SADD', key, arg(2))
return 1
