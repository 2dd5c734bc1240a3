-- Publish alerts the detector raised on its own (device offline, missing data): their
-- events and analysis jobs at once.
-- KEYS[1] events stream   KEYS[2] queue   KEYS[3..] job hashes, one per job, same order
-- ARGV[1] events maxlen   ARGV[2] payload JSON {"events": [[kind, device, sev, data], ...],
--                                             "jobs": [[id, priority, body], ...]}
-- ARGV[3] queue notify channel
-- Returns the number of jobs enqueued (a job that already exists is not added again).
redis.replicate_commands()
local payload = cjson.decode(ARGV[2])
for _, e in ipairs(payload.events) do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
    'kind', e[1], 'device', e[2], 'sev', e[3], 'data', e[4])
end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local enqueued = 0
for i, j in ipairs(payload.jobs) do
  enqueued = enqueued + vigil_enqueue(KEYS[2], KEYS[2 + i], j[1], j[2], j[3], now_ms)
end
if enqueued > 0 then
  redis.call('PUBLISH', ARGV[3], enqueued)
end
return enqueued
