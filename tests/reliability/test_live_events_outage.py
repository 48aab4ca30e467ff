"""A Redis outage under live followers: once Redis is back, the API process's event hub
subscribes again by itself, however long the outage, and its followers get live events again
(after being told to re-read their job). A real redis-server is stopped and started again."""

from __future__ import annotations

import asyncio
import time

from api.job_events import RESYNC, JobEventHub
from shared.jobs.service import events_channel
from shared.stores import async_redis_client
from tests.reliability.chaos import RestartableRedis

#: longer than the hub's first reconnect attempts (0.1 + 0.2 + 0.4 + 0.8 s), so at least one
#: re-subscription fails while Redis is still down
OUTAGE_S = 3.0


def test_followers_get_live_events_again_after_a_long_redis_outage(tmp_path, settings):
    import redis

    server = RestartableRedis(tmp_path / "redis", tmp_path / "redis.log")
    server.start()
    local = settings.model_copy(update={"redis_url": server.url})

    async def outage() -> list:
        client = async_redis_client(local)
        hub = JobEventHub(client)
        hub.start()
        try:
            async with hub.follow("outage-job") as follower:
                await asyncio.to_thread(server.stop)
                await asyncio.sleep(OUTAGE_S)
                await asyncio.to_thread(server.start)
                publisher = redis.Redis.from_url(server.url, decode_responses=True)
                received: list = []
                deadline = time.monotonic() + 20
                while "after" not in received and time.monotonic() < deadline:  # until subscribed again
                    publisher.publish(events_channel("outage-job"), "after")
                    received += await follower.take(0.5)
                publisher.close()
                return received
        finally:
            await hub.stop()
            await client.aclose()

    try:
        received = asyncio.run(outage())
    finally:
        server.stop()
    assert RESYNC in received, "followers were not told to re-read their job"
    assert "after" in received, "no live event reached the follower after the outage"
