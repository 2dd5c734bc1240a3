-- Correct a bucket after the fact: take `delta` more (or give back, if negative), e.g.
-- actual tokens used minus the estimate reserved. May leave the bucket in debt, which
-- later acquisitions wait out.
-- KEYS[1] bucket hash   ARGV[1] capacity   ARGV[2] refill per ms   ARGV[3] delta
-- ARGV[4] now (ms), or '' (or absent) for Redis's clock
redis.replicate_commands()
local now
if ARGV[4] and ARGV[4] ~= '' then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate) - tonumber(ARGV[3])
tokens = math.min(capacity, tokens)
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.3f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(2 * capacity / rate) + 60000)
return string.format('%.6f', tokens)
