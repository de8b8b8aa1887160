-- Feedback::message (reads only). Own args: provider id. Returns {} when the index (`mid`)
-- holds no entry for it, else {run, rcpt, state or '', snapshot or ''}.
local member = redis.call('HGET', P .. 'mid', arg(1))
if not member then return {} end
local i = string.find(member, '\31', 1, true)
if not i then return redis.error_reply('CORRUPT mid ' .. arg(1) .. ': member names no delivery') end
local run, rcpt = string.sub(member, 1, i - 1), string.sub(member, i + 1)
return {
  run, rcpt,
  redis.call('HGET', P .. 'dl:' .. run, rcpt) or '',
  redis.call('HGET', P .. 'snap:' .. run, rcpt) or '',
}
