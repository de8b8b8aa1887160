-- Prepended (after the prelude) to the claim, lease and compaction scripts: a delivery's state
-- JSON (src/keys.rs) read and written, and members naming deliveries.
-- cjson writes numbers with 14 significant digits, too few for a slot in microseconds (16), so
-- states are written by enc(), integers in full; cjson only encodes strings.
local SEP = '\31'
local function num(n)
  if n == math.floor(n) then return string.format('%.0f', n) end
  return string.format('%.17g', n)
end
local function enc(st)
  local parts = {}
  for k, v in pairs(st) do
    local t = type(v)
    local val
    if t == 'number' then val = num(v)
    elseif t == 'boolean' then val = tostring(v)
    elseif v == cjson.null then val = 'null'
    else val = cjson.encode(v) end
    parts[#parts + 1] = cjson.encode(k) .. ':' .. val
  end
  return '{' .. table.concat(parts, ',') .. '}'
end
-- A stored JSON object, or nil when it is not one.
local function dec(raw)
  local ok, st = pcall(cjson.decode, raw)
  if not ok or type(st) ~= 'table' then return nil end
  return st
end
local function corrupt(what)
  return redis.error_reply('CORRUPT ' .. what)
end
-- run, recipient of a member `<run>SEP<rcpt>`, or nil.
local function split(member)
  local i = string.find(member, SEP, 1, true)
  if not i then return nil end
  return string.sub(member, 1, i - 1), string.sub(member, i + 1)
end
-- The recipient's phone from its snapshot (`snap:<run>`), or nil. The codec (src/codec.rs
-- `Snap`) writes the phone as the first field, so `{"p":"+…"` is read without decoding the
-- snapshot's attributes (an E.164 phone holds no quote or escape); a snapshot written otherwise
-- is decoded whole.
local function snap_phone(run, rcpt)
  local raw = redis.call('HGET', P .. 'snap:' .. run, rcpt)
  if not raw then return nil end
  if string.sub(raw, 1, 7) == '{"p":"+' then
    local close = string.find(raw, '"', 8, true)
    if close then return string.sub(raw, 7, close - 1) end
  end
  local snap = dec(raw)
  if not snap or type(snap.p) ~= 'string' then return nil end
  return snap.p
end
