-- Take `cost` from every bucket at once, or from none. Buckets refill continuously on
-- Redis's own clock, so every replica sees the same time.
-- KEYS[i] bucket hash   ARGV[3i-2] capacity   ARGV[3i-1] refill per ms   ARGV[3i] cost
-- ARGV[3n+1] now (ms), or '' (or absent) for Redis's clock; tests drive time with it
-- Returns {granted (0/1), wait ms until it could be granted, tokens left in KEYS[1]}.
redis.replicate_commands()
local now
local given = ARGV[3 * #KEYS + 1]
if given and given ~= '' then
  now = tonumber(given)
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local levels = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local capacity = tonumber(ARGV[3 * i - 2])
  local rate = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or capacity
  local ts = tonumber(state[2]) or now
  tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
  levels[i] = tokens
  -- A cost above the capacity is granted from a full bucket and leaves it in debt, so
  -- one large request is possible and the long-run rate still holds.
  local needed = math.min(cost, capacity)
  if tokens < needed then
    local need = (needed - tokens) / rate
    if need > wait then wait = need end
  end
end
local granted = wait == 0
for i, key in ipairs(KEYS) do
  local capacity = tonumber(ARGV[3 * i - 2])
  local rate = tonumber(ARGV[3 * i - 1])
  local tokens = levels[i]
  if granted then tokens = tokens - tonumber(ARGV[3 * i]) end
  levels[i] = tokens
  redis.call('HSET', key, 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.3f', now))
  redis.call('PEXPIRE', key, math.ceil(2 * capacity / rate) + 60000)
end
return {granted and 1 or 0, math.ceil(wait), string.format('%.6f', levels[1])}
