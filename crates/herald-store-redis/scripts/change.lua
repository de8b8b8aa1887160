-- Deliveries::defer, finish, requeue and apply: any number of changes in one call, each
-- succeeding or not on its own. Own args: the caller's now (ms, a finish's end instant), then
-- 8 per change: kind (`defer`, `finish`, `requeue`), run, rcpt, owner or '', until ms or '',
-- wait reason or '', terminal state JSON (finish: `s`, `x`, `m`) or '', no-send flag (1 when
-- the outcome proves nothing reached the provider).
-- Returns one answer per change: 'ok', 'nf' (no such delivery) or 'c:<state>' (a conflict).
-- Every move keeps the run's counters exact; a terminal write adds the member to `done` and
-- takes it out of `leases`; what proves no send (a requeue, a failed/expired/skipped end of a
-- claim) takes it out of `hist:<phone>` too.
local e = check_epoch(); if e then return e end
local now = tonumber(arg(1))
local out = {}
local n = (#ARGV - 4) / 8
for i = 0, n - 1 do
  local b = 1 + i * 8
  local kind, run, rcpt, owner = arg(b + 1), arg(b + 2), arg(b + 3), arg(b + 4)
  local dl = P .. 'dl:' .. run
  local raw = redis.call('HGET', dl, rcpt)
  local answer = 'ok'
  if not raw then
    answer = 'nf'
  else
    local st = cjson.decode(raw)
    local member = run .. SEP .. rcpt
    local rkey = P .. 'run:' .. run
    if kind == 'defer' then
      if st.s ~= 'q' then
        answer = 'c:' .. st.s
      else
        st.d = tonumber(arg(b + 5))
        st.w = arg(b + 6)
        redis.call('HSET', dl, rcpt, enc_state(st))
        redis.call('ZADD', P .. 'due:' .. run, st.d, rcpt)
      end
    elseif kind == 'requeue' then
      if st.s ~= 's' or st.o ~= owner then
        answer = 'c:' .. st.s
      else
        local new = {s = 'q', d = tonumber(arg(b + 5)), a = st.a, o = st.o, t = st.t, r = st.r}
        if arg(b + 6) ~= '' then new.w = arg(b + 6) end
        redis.call('HSET', dl, rcpt, enc_state(new))
        redis.call('ZADD', P .. 'due:' .. run, new.d, rcpt)
        redis.call('ZREM', P .. 'leases', member)
        if st.p then redis.call('ZREM', P .. 'hist:' .. st.p, member) end
        move_count(rkey, st, new)
      end
    else
      local from = (owner ~= '') and 's' or 'q'
      if st.s ~= from or (owner ~= '' and st.o ~= owner) then
        answer = 'c:' .. st.s
      else
        local t = cjson.decode(arg(b + 7))
        local new = {s = t.s, x = t.x, m = t.m, f = now, a = st.a, o = st.o, t = st.t, r = st.r}
        redis.call('HSET', dl, rcpt, enc_state(new))
        if from == 'q' then
          redis.call('ZREM', P .. 'due:' .. run, rcpt)
        else
          redis.call('ZREM', P .. 'leases', member)
          if arg(b + 8) == '1' and st.p then redis.call('ZREM', P .. 'hist:' .. st.p, member) end
        end
        redis.call('ZADD', P .. 'done', now, member)
        move_count(rkey, st, new)
      end
    end
  end
  out[#out + 1] = answer
end
return out
