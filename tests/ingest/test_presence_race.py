"""A commit that lands after its stream's goodbye must not bring the device back online.

Commits are coalesced across streams, so the last batch of a stream can still be on its
way to Redis when the stream ends and its goodbye marks the device offline. The commit
script refreshes the device record (last_seen) at most once a second; it used to write
it whatever was there, and a Ctrl-C of `vigil up` once left a device "online" for good
(tests/cli/test_stack_stop.py).
"""

from __future__ import annotations

import json
import time

from redis.asyncio import Redis

from services.common import keys
from services.common.scripts import Scripts
from services.ingest.commit import Commit, Committer
from services.ingest.presence import Connection, Presence


async def _status(redis: Redis, device_id: str) -> tuple[str, str]:
    record = json.loads(await redis.hget(keys.DEVICES, device_id) or "{}")
    return record.get("status", ""), record.get("conn", "")


async def test_a_commit_after_the_goodbye_leaves_the_device_offline(redis: Redis) -> None:
    scripts = Scripts(redis)
    presence = Presence(redis, scripts, 1000)
    async with Committer(redis, scripts, 1000) as committer:
        stream = Connection("d-1", {}, time.time())
        await presence.mark(stream, "online", time.time())
        # A batch committed while the stream is live refreshes its record.
        live = Commit("d-1", 1, [], [], readings=1, device_record=stream.record("online", 1.0))
        assert await committer.commit(live)
        assert await _status(redis, "d-1") == ("online", stream.conn)
        await presence.goodbye(stream, time.time())
        late = Commit("d-1", 2, [], [], readings=1, device_record=stream.record("online", 2.0))
        assert await committer.commit(late)  # the batch itself is applied
        assert await _status(redis, "d-1") == ("offline", stream.conn)


async def test_a_late_commit_of_an_old_stream_leaves_the_new_one_alone(redis: Redis) -> None:
    scripts = Scripts(redis)
    presence = Presence(redis, scripts, 1000)
    async with Committer(redis, scripts, 1000) as committer:
        old, new = Connection("d-1", {}, time.time()), Connection("d-1", {}, time.time())
        await presence.mark(old, "online", time.time())
        await presence.mark(new, "online", time.time())  # the device reconnected
        late = Commit("d-1", 1, [], [], readings=1, device_record=old.record("online", 2.0))
        assert await committer.commit(late)
        assert await _status(redis, "d-1") == ("online", new.conn)
        # A record Redis lost is written again by the next refresh.
        await redis.hdel(keys.DEVICES, "d-1")
        again = Commit("d-1", 2, [], [], readings=1, device_record=new.record("online", 3.0))
        assert await committer.commit(again)
        assert await _status(redis, "d-1") == ("online", new.conn)
