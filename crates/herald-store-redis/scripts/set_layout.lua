-- The last step of an upgrade (src/upgrade.rs): the layout version moves from arg 1 to arg 2,
-- unless another handle moved it already. Returns the layout version now stored.
local e = check_epoch(); if e then return e end
local key = P .. 'layout'
if redis.call('GET', key) == arg(1) then redis.call('SET', key, arg(2)) end
return redis.call('GET', key) or ''
