-- Library: the analysis queue's rules, prepended to every script that enqueues or moves
-- jobs (see scripts.py), so the rules live in one place while each caller stays one
-- atomic script.
--
-- vigil_enqueue(queue_key, job_key, id, priority, body, now_ms) -> 1 added, 0 not added
--
-- Score = level * 10^12 - enqueue time (ms with a microsecond fraction): critical
-- before warning before info, first in first out within a level. A job's level starts
-- at its priority and rises by aging (queue_reap.lua). Enqueue rules, in order:
--  1. An id that exists is not added again (a resent batch).
--  2. One diagnosis per episode (body.episode_id): when the episode has a queued or
--     running job of the same or higher priority, the new job is merged into it (not
--     added). A queued job of lower priority is replaced by the new one, which keeps
--     the old job's enqueue time, at its own higher level.
--  3. Bounded: while the queue holds more than `max_depth` jobs (field of the hash
--     <queue>:config, written by the analyzer; absent = unbounded) the job that would
--     be claimed last is shed: removed and recorded on the stream <queue>:shed. A job
--     at critical level is never shed, so critical jobs may exceed the bound.
--
-- Keys derived from the queue key (keys.py builds the same names): <queue>:config,
-- <queue>:shed, <queue>:episode:<episode id>. A job's hash is job_key's prefix + id.
-- Every number written to Redis goes through string.format: Lua's tostring would cut
-- scores of 10^12 to 14 significant digits.

local VIGIL_LEVEL_SCALE = 1000000000000
local VIGIL_CRITICAL = 3
local VIGIL_EPISODE_TTL_S = 7 * 86400
local VIGIL_SHED_MAXLEN = 10000
-- What the last vigil_enqueue did: added, exists, merged or shed (for callers that
-- report more than 0/1; a script may not create globals, so this is a local table).
local vigil_enqueue_outcome = {last = ''}

-- Now in ms with a microsecond fraction: `given` (a driven clock, in tests) or TIME.
local function vigil_now(given)
  if given ~= nil and given ~= '' then
    return tonumber(given)
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end

local function vigil_ms(value)
  return string.format('%.3f', value)
end

local function vigil_score(level, enqueued_ms)
  return vigil_ms(tonumber(level) * VIGIL_LEVEL_SCALE - tonumber(enqueued_ms))
end

local function vigil_job_prefix(job_key, id)
  return string.sub(job_key, 1, #job_key - #id)
end

-- Drop the episode's pointer to `id`, if it still points there.
local function vigil_forget_episode(queue_key, episode, id)
  if episode and episode ~= '' then
    local ep_key = queue_key .. ':episode:' .. episode
    if redis.call('GET', ep_key) == id then
      redis.call('DEL', ep_key)
    end
  end
end

-- Move a job to the dead letters with its last error; the hash is kept for a while.
local function vigil_dead_letter(queue_key, dead_key, job_key, id, err, dead_cap, dead_ttl_s)
  redis.call('HSET', job_key, 'state', 'dead', 'last_error', err)
  redis.call('EXPIRE', job_key, dead_ttl_s)
  redis.call('LPUSH', dead_key, id)
  redis.call('LTRIM', dead_key, 0, tonumber(dead_cap) - 1)
  vigil_forget_episode(queue_key, redis.call('HGET', job_key, 'episode'), id)
end

-- Shed the last-claimed jobs until the bound holds; returns the shed ids.
local function vigil_shed(queue_key, prefix)
  local shed = {}
  local bound = tonumber(redis.call('HGET', queue_key .. ':config', 'max_depth') or '')
  if not bound or bound <= 0 then
    return shed
  end
  while redis.call('ZCARD', queue_key) > bound do
    local victim = redis.call('ZRANGE', queue_key, 0, 0)[1]
    local vk = prefix .. victim
    local f = redis.call('HMGET', vk, 'level', 'priority', 'episode', 'body')
    if f[2] and tonumber(f[1] or f[2]) >= VIGIL_CRITICAL then
      break
    end
    redis.call('ZREM', queue_key, victim)
    if f[2] then
      redis.call('DEL', vk)
      vigil_forget_episode(queue_key, f[3], victim)
      redis.call('XADD', queue_key .. ':shed', 'MAXLEN', '~', VIGIL_SHED_MAXLEN, '*',
        'id', victim, 'priority', f[2], 'body', f[4] or '')
      shed[#shed + 1] = victim
    end
  end
  return shed
end

local function vigil_enqueue(queue_key, job_key, id, priority, body, now_ms)
  if redis.call('EXISTS', job_key) == 1 then
    vigil_enqueue_outcome.last = 'exists'
    return 0
  end
  priority = tonumber(priority)
  local prefix = vigil_job_prefix(job_key, id)
  local enqueued_ms = now_ms
  local ok, decoded = pcall(cjson.decode, body)
  local episode = ''
  if ok and type(decoded) == 'table' and type(decoded.episode_id) == 'string' then
    episode = decoded.episode_id
  end
  local ep_key = nil
  if episode ~= '' then
    ep_key = queue_key .. ':episode:' .. episode
    local other = redis.call('GET', ep_key)
    if other then
      local ok_key = prefix .. other
      local st = redis.call('HMGET', ok_key, 'state', 'priority', 'enqueued_ms')
      if st[1] == 'queued' or st[1] == 'running' then
        if tonumber(st[2]) >= priority then
          redis.call('HINCRBY', ok_key, 'merged', 1)
          vigil_enqueue_outcome.last = 'merged'
          return 0
        end
        if st[1] == 'queued' then
          redis.call('ZREM', queue_key, other)
          redis.call('DEL', ok_key)
          enqueued_ms = tonumber(st[3])
        end
      end
    end
  end
  local score = vigil_score(priority, enqueued_ms)
  redis.call('HSET', job_key, 'id', id, 'priority', priority, 'level', priority,
    'body', body, 'attempts', 0, 'failures', 0, 'state', 'queued', 'score', score,
    'enqueued_ms', vigil_ms(enqueued_ms), 'episode', episode)
  redis.call('ZADD', queue_key, score, id)
  if ep_key then
    redis.call('SET', ep_key, id, 'EX', VIGIL_EPISODE_TTL_S)
  end
  for _, victim in ipairs(vigil_shed(queue_key, prefix)) do
    if victim == id then
      vigil_enqueue_outcome.last = 'shed'
      return 0
    end
  end
  vigil_enqueue_outcome.last = 'added'
  return 1
end
