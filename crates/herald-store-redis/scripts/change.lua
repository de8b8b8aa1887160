-- Deliveries::defer, finish, requeue and apply: any number of changes in one call, each
-- succeeding or not on its own. Own args: the caller's now (ms, a finish's end instant), then
-- 8 per change: kind (`defer`, `finish`, `requeue`), run, rcpt, owner or '', until ms or '',
-- wait reason or '', terminal state JSON (finish: `s`, `x`, `m`) or '', no-send flag (1 when
-- the outcome proves nothing reached the provider).
-- Returns one answer per change: 'ok', 'nf' (no such delivery) or 'c:<state>' (a conflict).
-- Every move keeps the run's counters exact (`c:delivered`/`c:read` too); a terminal write adds
-- the member to `done` and takes it out of `leases`; what proves no send (a requeue, a
-- failed/expired/skipped end of a claim) takes it out of `hist:<phone>` too. A finish `sent`
-- indexes its provider id and applies the reports kept for it (feedback.lua).
-- A requeue under a cancelled run ends the delivery `skipped(cancelled)` instead (answer 'ok'):
-- a cancelled run is never claimed again, so queued it would wait for ever; out of `hist` as a
-- requeue, since nothing was sent.
-- Lua in Redis has no rollback, so the script is in two passes: the first decodes every state
-- and decides every change (a later change of the same delivery sees the earlier one's state),
-- queuing its writes; a state that does not decode is a `CORRUPT` error with nothing written.
-- Only then does the second pass run the writes, none of which can fail.
local e = check_epoch(); if e then return e end
local now = tonumber(arg(1))
local out = {}
local n = (#ARGV - 4) / 8
-- The states as the changes before leave them: dl key -> rcpt -> state table.
local states = {}
-- The second pass: functions that only write.
local writes = {}
local function write(f) writes[#writes + 1] = f end
-- The kept reports read by this call, so no two changes of the batch apply one twice.
local taken = {}
-- Whether each run addressed is cancelled: run id -> bool, read once per call.
local cancelled = {}
local function is_cancelled(run)
  local c = cancelled[run]
  if c == nil then
    c = redis.call('HGET', P .. 'run:' .. run, 'state') == 'cancelled'
    cancelled[run] = c
  end
  return c
end

local function state_of(dl, run, rcpt)
  local of_run = states[dl]
  if of_run == nil then
    of_run = {}
    states[dl] = of_run
  end
  local st = of_run[rcpt]
  if st == nil then
    local raw = redis.call('HGET', dl, rcpt)
    if not raw then
      st = false
    else
      st = dec_state(raw)
      if not st then return nil, 'dl:' .. run .. ' ' .. rcpt .. ': the state is not JSON' end
    end
    of_run[rcpt] = st
  end
  return st
end

-- First pass: decide every change, write nothing.
for i = 0, n - 1 do
  local b = 1 + i * 8
  local kind, run, rcpt, owner = arg(b + 1), arg(b + 2), arg(b + 3), arg(b + 4)
  local dl = P .. 'dl:' .. run
  local st, bad = state_of(dl, run, rcpt)
  if st == nil then return corrupt(bad) end
  local answer = 'ok'
  if not st then
    answer = 'nf'
  else
    local member = run .. SEP .. rcpt
    local rkey = P .. 'run:' .. run
    if kind == 'defer' then
      if st.s ~= 'q' then
        answer = 'c:' .. st.s
      else
        local new = {}
        for k, v in pairs(st) do new[k] = v end
        new.d = tonumber(arg(b + 5))
        new.w = arg(b + 6)
        states[dl][rcpt] = new
        local encoded = enc_state(new)
        write(function()
          redis.call('HSET', dl, rcpt, encoded)
          redis.call('ZADD', P .. 'due:' .. run, new.d, rcpt)
          redis.call('SADD', P .. 'qruns', run) -- the run has queued work (src/keys.rs `qruns`)
        end)
      end
    elseif kind == 'requeue' then
      if st.s ~= 's' or st.o ~= owner then
        answer = 'c:' .. st.s
      elseif is_cancelled(run) then
        local new = {s = 'skipped', x = 'cancelled', f = now, a = st.a, o = st.o, t = st.t, r = st.r}
        states[dl][rcpt] = new
        local encoded, from = enc_state(new), st
        write(function()
          redis.call('HSET', dl, rcpt, encoded)
          redis.call('ZADD', P .. 'done', now, member)
          redis.call('ZREM', P .. 'leases', member)
          if from.p then redis.call('ZREM', P .. 'hist:' .. from.p, member) end
          move_count(rkey, from, new)
        end)
      else
        local new = {s = 'q', d = tonumber(arg(b + 5)), a = st.a, o = st.o, t = st.t, r = st.r}
        if arg(b + 6) ~= '' then new.w = arg(b + 6) end
        states[dl][rcpt] = new
        local encoded, from = enc_state(new), st
        write(function()
          redis.call('HSET', dl, rcpt, encoded)
          redis.call('ZADD', P .. 'due:' .. run, new.d, rcpt)
          redis.call('SADD', P .. 'qruns', run) -- the run has queued work (src/keys.rs `qruns`)
          redis.call('ZREM', P .. 'leases', member)
          if from.p then redis.call('ZREM', P .. 'hist:' .. from.p, member) end
          move_count(rkey, from, new)
        end)
      end
    else
      local from_state = (owner ~= '') and 's' or 'q'
      if st.s ~= from_state or (owner ~= '' and st.o ~= owner) then
        answer = 'c:' .. st.s
      else
        local t = cjson.decode(arg(b + 7))
        local new = {s = t.s, x = t.x, m = t.m, f = now, a = st.a, o = st.o, t = st.t, r = st.r}
        -- A `sent` indexes its provider id (the detail), and the reports kept for that id or
        -- this delivery are applied with it; an `unknown` applies those kept for the delivery
        -- (feedback.lua, src/keys.rs "Provider feedback").
        local pid, kept = '', nil
        if new.s == 'sent' and type(new.m) == 'string' and new.m ~= '' then
          pid = new.m
          new.i = pid
        end
        if new.s == 'sent' or new.s == 'unknown' then
          kept = fb_kept_for(pid, member, now, taken)
          new = fb_fold(new, kept)
        end
        states[dl][rcpt] = new
        local encoded, from, no_send = enc_state(new), st, arg(b + 8) == '1'
        write(function()
          redis.call('HSET', dl, rcpt, encoded)
          if from_state == 'q' then
            redis.call('ZREM', P .. 'due:' .. run, rcpt)
          else
            redis.call('ZREM', P .. 'leases', member)
            if no_send and from.p then redis.call('ZREM', P .. 'hist:' .. from.p, member) end
          end
          redis.call('ZADD', P .. 'done', now, member)
          fb_move(rkey, from, new)
          fb_index(from, new, member)
          if kept then fb_forget(kept, pid, member) end
        end)
      end
    end
  end
  out[#out + 1] = answer
end

-- Second pass: the writes.
for _, f in ipairs(writes) do f() end
return out
