-- The delivery state JSON (`dl:<run>` values, see src/keys.rs), prepended after the prelude by
-- the scripts that move deliveries (see src/codec.rs `script_with_state`).
-- cjson.encode writes numbers with 14 significant digits, which would round a slot in
-- microseconds (16 digits): states are therefore written field by field, integers with %d.
local STATE_FIELDS = {'s', 'd', 'w', 'a', 'o', 'l', 't', 'r', 'x', 'm', 'f', 'p', 'g', 'i'}
local STATE_INTEGERS = {d = true, a = true, l = true, t = true, r = true, f = true}
local function enc_state(st)
  local parts = {}
  for _, k in ipairs(STATE_FIELDS) do
    local v = st[k]
    if v ~= nil and v ~= cjson.null then
      if STATE_INTEGERS[k] then
        parts[#parts + 1] = '"' .. k .. '":' .. string.format('%d', v)
      else
        parts[#parts + 1] = '"' .. k .. '":' .. cjson.encode(v)
      end
    end
  end
  return '{' .. table.concat(parts, ',') .. '}'
end
-- The counter of a state: `c:queued`, `c:sending`, `c:sent`, `c:failed:<code>`,
-- `c:skipped:<reason>`, …
local function counter(st)
  local s = st.s
  if s == 'q' then return 'c:queued' end
  if s == 's' then return 'c:sending' end
  if s == 'failed' or s == 'skipped' then return 'c:' .. s .. ':' .. tostring(st.x) end
  return 'c:' .. s
end
-- Moves one delivery's count in its run's hash from state `from` to state `to`.
local function move_count(run_key, from, to)
  local a, b = counter(from), counter(to)
  if a ~= b then
    redis.call('HINCRBY', run_key, a, -1)
    redis.call('HINCRBY', run_key, b, 1)
  end
end
local SEP = '\31'
-- A stored state as a table with its `s`, or nil when it is not one: decoded under pcall, so a
-- damaged value is the caller's `CORRUPT` error rather than a bare script error.
local function dec_state(raw)
  local ok, st = pcall(cjson.decode, raw)
  if not ok or type(st) ~= 'table' or type(st.s) ~= 'string' then return nil end
  return st
end
-- A `CORRUPT <key>: <reason>` error (src/conn.rs `map_err` makes it `StoreError::Corrupt`).
local function corrupt(what)
  return redis.error_reply('CORRUPT ' .. what)
end
