-- Runs::finish_expansion. Own args: run, total. Returns 1, or 0 when there is no such run.
local e = check_epoch(); if e then return e end
local key = P .. 'run:' .. arg(1)
if redis.call('EXISTS', key) == 0 then return 0 end
redis.call('HSET', key, 'total', arg(2))
return 1
