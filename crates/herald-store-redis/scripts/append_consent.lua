-- Consents::append. Own args: the recorded instant (ms), then 3 per event: `<channel>:<phone>`,
-- the event's identity, its JSON without `r`. HSETNX keeps the first recording of an identity,
-- so a re-import neither duplicates an event nor moves its recorded instant. Returns how many
-- were new.
local e = check_epoch(); if e then return e end
local r = arg(1)
local new = 0
for i = 2, #ARGV - 3, 3 do
  local value = '{"r":' .. r .. ',' .. string.sub(arg(i + 2), 2)
  new = new + redis.call('HSETNX', P .. 'consent:' .. arg(i), arg(i + 1), value)
end
return new
