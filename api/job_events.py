"""Live job events for SSE followers: one Redis pub/sub connection per API process, fanned out
in-process to any number of followers.

A follower registers for a job before it reads the job's current state, so no transition can
fall in between. The hub subscribes to a job's channel when its first follower arrives and
unsubscribes when the last one leaves, so a process receives only the jobs someone follows.
Each follower keeps a short backlog of views (a job has a handful of transitions; a follower
that falls behind keeps the newest ones, which carry the whole state). When the connection to
Redis drops, the hub reconnects by itself, re-subscribes, and tells every follower to re-read
its job, since transitions made meanwhile were not delivered.

How many streams a user holds open, across all API processes, is counted in Redis (a sorted
set of stream ids with a lease renewed by every heartbeat), so one user cannot take the
capacity meant for everyone; a stream whose process died drops out when its lease lapses.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator

import redis
import redis.asyncio as aredis

from shared.errors import RateLimited, ServiceUnavailable
from shared.jobs.service import events_channel

log = logging.getLogger("api.job_events")

#: views kept for a follower that reads slower than its job moves (the newest ones win)
BACKLOG = 32
RESYNC = object()  # "transitions may have been missed: read the job again"


class Follower:
    def __init__(self) -> None:
        self.items: collections.deque = collections.deque(maxlen=BACKLOG)
        self.ready = asyncio.Event()

    def push(self, item) -> None:
        self.items.append(item)
        self.ready.set()

    async def next(self, timeout_s: float):
        """The next view (JSON text) or RESYNC; None when nothing came within `timeout_s`."""
        if not self.items:
            self.ready.clear()
            try:
                await asyncio.wait_for(self.ready.wait(), timeout_s)
            except TimeoutError:
                return None
        return self.items.popleft()


class JobEventHub:
    def __init__(self, client: aredis.Redis) -> None:
        self.client = client
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.followers: dict[str, set[Follower]] = {}
        self._subscribed = asyncio.Event()  # the pub/sub connection has a subscription to read
        # one (un)subscribe at a time: the first one opens the connection, and two opening it
        # at once would leave one subscription on a connection nobody reads
        self._changing = asyncio.Lock()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._read(), name="job-event-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()

    @contextlib.asynccontextmanager
    async def follow(self, job_id: str) -> AsyncIterator[Follower]:
        channel = events_channel(job_id)
        follower = Follower()
        group = self.followers.setdefault(channel, set())
        group.add(follower)
        try:
            if len(group) == 1:
                await self._subscribe(channel)
            yield follower
        finally:
            group.discard(follower)
            if not group and self.followers.get(channel) is group:
                del self.followers[channel]
                with contextlib.suppress(redis.RedisError, OSError):
                    async with self._changing:
                        await self.pubsub.unsubscribe(channel)

    async def _subscribe(self, channel: str) -> None:
        try:
            async with self._changing:
                await self.pubsub.subscribe(channel)
        except (redis.RedisError, OSError) as exc:
            raise ServiceUnavailable("Live job updates are unavailable; poll GET /jobs/{id} meanwhile.") from exc
        self._subscribed.set()

    async def _read(self) -> None:
        backoff = 0.1
        while True:
            if not self.pubsub.subscribed:
                self._subscribed.clear()
                await self._subscribed.wait()
            try:
                message = await self.pubsub.get_message(timeout=1.0)
                backoff = 0.1
            except (redis.RedisError, OSError) as exc:
                log.warning("job event connection lost; reconnecting", extra={"error_type": type(exc).__name__})
                await asyncio.sleep(backoff)
                backoff = min(5.0, backoff * 2)
                await self._resubscribe()
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            for follower in tuple(self.followers.get(channel, ())):
                follower.push(message["data"])

    async def _resubscribe(self) -> None:
        """After a lost connection: subscribe again to what is followed, and have every follower
        re-read its job (transitions published meanwhile were never delivered)."""
        try:
            async with self._changing:
                await self.pubsub.aclose()
                self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                channels = list(self.followers)
                if channels:
                    await self.pubsub.subscribe(*channels)
        except (redis.RedisError, OSError):
            return  # still down: the read loop tries again
        for group in self.followers.values():
            for follower in group:
                follower.push(RESYNC)


# KEYS: the user's open streams (zset: stream id -> lease expiry); ARGV: now, cap, lease s, id
_TAKE_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local open = redis.call('ZCARD', KEYS[1])
if open >= tonumber(ARGV[2]) then return open end
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[3]), ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 60)
return -1
"""


class StreamSlots:
    """Open SSE streams per user, across API processes, capped (atomically, in Redis)."""

    PREFIX = "nv:sse:"

    def __init__(self, client: aredis.Redis, cap: int, lease_s: float) -> None:
        self.client, self.cap, self.lease_s = client, cap, lease_s
        self._take = client.register_script(_TAKE_SLOT)

    async def take(self, user_id: str) -> str:
        stream_id = uuid.uuid4().hex
        try:
            open_streams = await self._take(keys=[self.PREFIX + user_id],
                                            args=[time.time(), self.cap, self.lease_s, stream_id])
        except redis.RedisError as exc:
            raise ServiceUnavailable("Live job updates are unavailable; poll GET /jobs/{id} meanwhile.") from exc
        if int(open_streams) >= 0:
            raise RateLimited(
                f"You already follow {open_streams} jobs live; close one first.",
                action="Close a stream you no longer need, or poll GET /jobs/{id}, then retry.",
                headers={"Retry-After": str(int(self.lease_s))})
        return stream_id

    async def renew(self, user_id: str, stream_id: str) -> None:
        with contextlib.suppress(redis.RedisError):
            await self.client.zadd(self.PREFIX + user_id, {stream_id: time.time() + self.lease_s})

    async def give_back(self, user_id: str, stream_id: str) -> None:
        with contextlib.suppress(redis.RedisError):
            await self.client.zrem(self.PREFIX + user_id, stream_id)


