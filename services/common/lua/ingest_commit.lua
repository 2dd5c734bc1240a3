-- Apply one device batch's consequences at once, or nothing if it was applied before.
-- KEYS[1] seen set of the device   KEYS[2] events stream   KEYS[3] queue
-- KEYS[4] history stream of the device   KEYS[5] readings counter of this second
-- KEYS[6] devices hash   KEYS[7..] job hashes, one per job in the payload, same order
-- ARGV[1] batch seq   ARGV[2] events maxlen   ARGV[3] seen cap   ARGV[4] seen ttl (s)
-- ARGV[5] payload JSON {"events": [[kind, device, sev, data], ...],
--                       "jobs": [[id, priority, body], ...]}, or '' when there is none
-- ARGV[6] queue notify channel   ARGV[7] history entry JSON ('' = none)
-- ARGV[8] history maxlen   ARGV[9] readings in the batch   ARGV[10] counter ttl (s)
-- ARGV[11] device id   ARGV[12] device record JSON for the devices hash ('' = keep;
--   written only over this connection's online record, or where there is none)
-- Returns 0 when the seq was applied before (nothing changes), else 1.
redis.replicate_commands()
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
local enqueued = 0
if ARGV[5] ~= '' then
  local payload = cjson.decode(ARGV[5])
  for _, e in ipairs(payload.events) do
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
      'kind', e[1], 'device', e[2], 'sev', e[3], 'data', e[4])
  end
  -- Enqueue time in ms with microsecond fraction, so jobs of one millisecond stay FIFO.
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  for i, j in ipairs(payload.jobs) do
    enqueued = enqueued + vigil_enqueue(KEYS[3], KEYS[6 + i], j[1], j[2], j[3], now_ms)
  end
end
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[8], '*', 'readings', ARGV[7])
end
redis.call('INCRBY', KEYS[5], ARGV[9])
redis.call('EXPIRE', KEYS[5], ARGV[10])
-- The record is refreshed only while it is this connection's and online (or gone, e.g.
-- Redis lost it): a commit that lands after the stream's goodbye (it was in flight when
-- the stream ended) or after another connection took over must not bring the device
-- back online.
if ARGV[12] ~= '' then
  local current = redis.call('HGET', KEYS[6], ARGV[11])
  local refresh = not current
  if current then
    local ok, record = pcall(cjson.decode, current)
    refresh = ok and type(record) == 'table' and record.status == 'online'
      and record.conn == cjson.decode(ARGV[12]).conn
  end
  if refresh then
    redis.call('HSET', KEYS[6], ARGV[11], ARGV[12])
  end
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
redis.call('EXPIRE', KEYS[1], ARGV[4])
if enqueued > 0 then
  redis.call('PUBLISH', ARGV[6], enqueued)
end
return 1
