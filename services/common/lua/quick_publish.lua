-- Publish an alert job's quick insight once: the first caller (the quick path or the
-- job's worker) marks the job and appends the insight in one step; later callers get
-- the mark and publish nothing, so the quick insight always precedes the job's own.
-- KEYS[1] quick mark of the job   KEYS[2] events stream
-- ARGV[1] mark (what the quick insight was)   ARGV[2] mark ttl (s)   ARGV[3] maxlen
-- ARGV[4..7] event kind, device, sev, data
-- Returns {1, mark} when published now, {0, existing mark} otherwise.
local existing = redis.call('GET', KEYS[1])
if existing then
  return {0, existing}
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
  'kind', ARGV[4], 'device', ARGV[5], 'sev', ARGV[6], 'data', ARGV[7])
return {1, ARGV[1]}
