-- Reserve spend under a daily budget, or refuse: the check and the increment are one
-- step, so replicas together never pass the budget.
-- KEYS[1] spend of the day (string float)
-- ARGV[1] amount   ARGV[2] budget   ARGV[3] ttl (s)
-- Returns {1, spent after} when reserved, {0, spent} when it would pass the budget.
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if spent + amount > tonumber(ARGV[2]) then
  return {0, string.format('%.9f', spent)}
end
local after = redis.call('INCRBYFLOAT', KEYS[1], string.format('%.9f', amount))
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, after}
