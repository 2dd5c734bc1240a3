-- Apply one device batch's consequences at once, or not at all if already applied.
-- KEYS[1] seen set of the device   KEYS[2] events stream   KEYS[3] queue
-- KEYS[4..] job hashes, one per job in the payload, same order
-- ARGV[1] batch seq   ARGV[2] events maxlen   ARGV[3] seen cap   ARGV[4] seen ttl (s)
-- ARGV[5] payload JSON {"events": [[kind, device, sev, data], ...],
--                       "jobs": [[id, priority, body], ...]}
-- ARGV[6] queue notify channel
-- Returns 0 when the seq was applied before (nothing changes), else 1.
redis.replicate_commands()
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
local payload = cjson.decode(ARGV[5])
for _, e in ipairs(payload.events) do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
    'kind', e[1], 'device', e[2], 'sev', e[3], 'data', e[4])
end
-- Enqueue time in ms with microsecond fraction, so jobs of one millisecond stay FIFO.
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local enqueued = 0
for i, j in ipairs(payload.jobs) do
  enqueued = enqueued + vigil_enqueue(KEYS[3], KEYS[3 + i], j[1], j[2], j[3], now_ms)
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
redis.call('EXPIRE', KEYS[1], ARGV[4])
if enqueued > 0 then
  redis.call('PUBLISH', ARGV[6], enqueued)
end
return 1
