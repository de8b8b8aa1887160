-- The upgrade of a layout 1 store to layout 2 (src/upgrade.rs), one chunk: indexes the
-- provider ids of one run's `sent` deliveries (their detail, `m`) in `mid`. Own args: run,
-- HSCAN cursor, count. Idempotent (HSETNX: an entry a layout 2 write made meanwhile stays), so
-- an upgrade interrupted anywhere is run again from the start. Reads and decodes the chunk first:
-- a state that does not decode is a `CORRUPT` error with nothing written.
-- Returns {next cursor ('0' when the run is done), entries added}.
local e = check_epoch(); if e then return e end
local run = arg(1)
local scan = redis.call('HSCAN', P .. 'dl:' .. run, arg(2), 'COUNT', tonumber(arg(3)))
local fields = scan[2]
local found = {}
for i = 1, #fields, 2 do
  local st = dec(fields[i + 1])
  if not st or type(st.s) ~= 'string' then
    return corrupt('dl:' .. run .. ' ' .. fields[i] .. ': the state is not JSON')
  end
  if st.s == 'sent' and type(st.m) == 'string' and st.m ~= '' then
    found[#found + 1] = { st.m, run .. SEP .. fields[i] }
  end
end
local added = 0
for _, f in ipairs(found) do
  added = added + redis.call('HSETNX', P .. 'mid', f[1], f[2])
end
return {scan[1], added}
