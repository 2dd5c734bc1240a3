-- A device came online or went offline: its record in the devices hash and a `device`
-- event, at once. Going offline only counts for the connection that is current, so a
-- stream that ends after the device already reconnected elsewhere changes nothing.
-- KEYS[1] devices hash   KEYS[2] events stream
-- ARGV[1] device id   ARGV[2] record JSON (with "conn")   ARGV[3] connection id
-- ARGV[4] "online" | "offline"   ARGV[5] event data JSON   ARGV[6] events maxlen
-- Returns 1 when the record changed, 0 when a newer connection owns it.
if ARGV[4] == 'offline' then
  local current = redis.call('HGET', KEYS[1], ARGV[1])
  if current then
    local ok, record = pcall(cjson.decode, current)
    if ok and type(record) == 'table' and record.conn ~= ARGV[3] then
      return 0
    end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*',
  'kind', 'device', 'device', ARGV[1], 'sev', '0', 'data', ARGV[5])
return 1
