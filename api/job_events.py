"""Live job events for SSE followers: one Redis pub/sub connection per API process, fanned out
in-process to any number of followers.

A follower registers for a job, and is handed back once Redis has confirmed the job's
subscription, before it reads the job's current state, so no transition can fall in between.
The hub subscribes to a job's channel when its first follower arrives and unsubscribes when the
last one leaves, so a process receives only the jobs someone follows. A message is decoded once
for all the followers of its job. Each follower keeps a short backlog of views (a job has a
handful of transitions; a follower that falls behind keeps the newest ones, which carry the
whole state). When the connection to Redis drops, the hub reconnects by itself (retrying until
Redis is back), re-subscribes, and tells every follower to re-read its job, since transitions
made meanwhile were not delivered.

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
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis
import redis.asyncio as aredis

from shared.errors import RateLimited, ServiceUnavailable
from shared.jobs.service import events_channel

log = logging.getLogger("api.job_events")

#: views kept for a follower that reads slower than its job moves (the newest ones win)
BACKLOG = 32
RESYNC = object()  # "transitions may have been missed: read the job again"
#: how often quiet followers are checked for a timeout: a heartbeat may come this much late
SWEEP_S = 1.0


class Follower:
    def __init__(self) -> None:
        self.items: collections.deque = collections.deque(maxlen=BACKLOG)
        self.ready = asyncio.Event()
        self.waiting_since: float | None = None  # monotonic time it started waiting, while it waits
        self.patience = 0.0

    def push(self, item) -> None:
        self.items.append(item)
        self.ready.set()

    async def take(self, timeout_s: float) -> list:
        """Every item waiting, oldest first (decoded views or RESYNC), once there is one; []
        when nothing came within `timeout_s` (give or take the hub's sweep interval). All of
        them at once: what piled up while the stream waited for the event loop then goes out in
        one write, so a process that falls behind a burst catches up instead of paying a socket
        write per event. No timer per wait: the hub's sweep wakes a follower whose patience ran
        out (a timer set and cancelled for every event was ~9% of the API's CPU in a burst)."""
        if not self.items:
            self.ready.clear()
            self.patience, self.waiting_since = timeout_s, time.monotonic()
            try:
                await self.ready.wait()
            finally:
                self.waiting_since = None
        items = list(self.items)
        self.items.clear()
        return items


class _Channel:
    """The followers of one job's channel, and whether Redis has confirmed its subscription."""

    __slots__ = ("followers", "subscribed")

    def __init__(self) -> None:
        self.followers: set[Follower] = set()
        self.subscribed = asyncio.Event()


class JobEventHub:
    def __init__(self, client: aredis.Redis, decode: Callable[[str], Any] = str,
                 confirm_timeout_s: float = 5.0) -> None:
        self.client = client
        # a message is decoded once, here, for all the followers of its job
        self.decode = decode
        self.confirm_timeout_s = confirm_timeout_s
        self.pubsub = client.pubsub()
        self.channels: dict[str, _Channel] = {}
        # SUBSCRIBEs sent and not yet confirmed, per channel, oldest first: Redis confirms in
        # the order it was asked, so each confirmation belongs to the oldest one waiting (a
        # channel left and followed again has an UNSUBSCRIBE between two of them)
        self._unconfirmed: dict[str, collections.deque[_Channel]] = collections.defaultdict(collections.deque)
        self._subscribed = asyncio.Event()  # the pub/sub connection has a subscription to read
        # one (un)subscribe at a time: the first one opens the connection, and two opening it
        # at once would leave one subscription on a connection nobody reads
        self._changing = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._read(), name="job-event-hub"),
                       asyncio.create_task(self._sweep(), name="job-event-sweep")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()

    @contextlib.asynccontextmanager
    async def follow(self, job_id: str) -> AsyncIterator[Follower]:
        """Yields once Redis has confirmed the job's subscription, for every follower, not only
        the first: the caller reads the job's state next, and a transition published before
        Redis takes the subscription would reach no one."""
        name = events_channel(job_id)
        follower = Follower()
        channel = self.channels.setdefault(name, _Channel())
        channel.followers.add(follower)
        try:
            if len(channel.followers) == 1:
                await self._subscribe(name, channel)
            await self._confirmed(channel)
            yield follower
        finally:
            channel.followers.discard(follower)
            if not channel.followers and self.channels.get(name) is channel:
                del self.channels[name]
                with contextlib.suppress(redis.RedisError, OSError):
                    async with self._changing:
                        await self.pubsub.unsubscribe(name)

    async def _subscribe(self, name: str, channel: _Channel) -> None:
        # shielded: a follower that goes away mid-send must not leave a SUBSCRIBE half sent,
        # nor one counted as waiting that was never sent (either would pair a later
        # confirmation with the wrong subscription)
        try:
            await asyncio.shield(self._send_subscribe(name, channel))
        except (redis.RedisError, OSError) as exc:
            raise ServiceUnavailable("Live job updates are unavailable; poll GET /jobs/{id} meanwhile.") from exc

    async def _send_subscribe(self, name: str, channel: _Channel) -> None:
        async with self._changing:
            # counted before it is sent: the read loop may take the confirmation while we
            # still wait for the send to drain
            self._unconfirmed[name].append(channel)
            try:
                await self.pubsub.subscribe(name)
            except BaseException:
                with contextlib.suppress(ValueError):
                    self._unconfirmed[name].remove(channel)
                raise
        self._subscribed.set()

    async def _confirmed(self, channel: _Channel) -> None:
        try:
            await asyncio.wait_for(channel.subscribed.wait(), self.confirm_timeout_s)
        except TimeoutError as exc:  # sent, but Redis did not answer: as good as down
            raise ServiceUnavailable("Live job updates are unavailable; poll GET /jobs/{id} meanwhile.") from exc

    async def _read(self) -> None:
        backoff, lost = 0.1, False
        while True:
            if lost:
                # retried until Redis is back: a failed attempt leaves a connection with nothing
                # subscribed, and waiting for the next follower would leave the present ones
                # without live events
                await asyncio.sleep(backoff)
                backoff = min(5.0, backoff * 2)
                lost = not await self._resubscribe()
                continue
            if not self.pubsub.subscribed:
                self._subscribed.clear()
                await self._subscribed.wait()
            try:
                message = await self.pubsub.get_message(timeout=1.0)
                backoff = 0.1
            except (redis.RedisError, OSError) as exc:
                log.warning("job event connection lost; reconnecting", extra={"error_type": type(exc).__name__})
                lost = True
                continue
            if message is None:
                continue
            if message["type"] == "subscribe":
                waiting = self._unconfirmed.get(message["channel"])
                if waiting:
                    waiting.popleft().subscribed.set()
                    if not waiting:
                        del self._unconfirmed[message["channel"]]
            elif message["type"] == "message" and message["channel"] in self.channels:
                try:
                    item = self.decode(message["data"])
                except Exception:  # one bad message must not stop the delivery of the others
                    log.exception("undecodable job event dropped", extra={"channel": message["channel"]})
                    continue
                for follower in tuple(self.channels[message["channel"]].followers):
                    follower.push(item)

    async def _sweep(self) -> None:
        """Wakes, once a second, every follower that has waited longer than its patience."""
        while True:
            await asyncio.sleep(SWEEP_S)
            now = time.monotonic()
            for channel in tuple(self.channels.values()):
                for follower in channel.followers:
                    if follower.waiting_since is not None and now - follower.waiting_since >= follower.patience:
                        follower.ready.set()

    async def _resubscribe(self) -> bool:
        """After a lost connection: subscribe again to what is followed, and have every follower
        re-read its job (transitions published meanwhile were never delivered). False while
        Redis is still unreachable."""
        try:
            async with self._changing:
                await self.pubsub.aclose()
                self.pubsub = self.client.pubsub()
                # what the old connection had not confirmed never will be: the new SUBSCRIBE
                # confirms every followed channel, waiting or not
                self._unconfirmed.clear()
                for name, channel in self.channels.items():
                    self._unconfirmed[name].append(channel)
                if self.channels:
                    await self.pubsub.subscribe(*self.channels)
        except (redis.RedisError, OSError):
            return False
        for channel in self.channels.values():
            for follower in channel.followers:
                follower.push(RESYNC)
        return True


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
        self._returning: list[tuple[str, str]] | None = None  # slots the next round trip gives back
        self._returned: asyncio.Task | None = None

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
        """Returns once the slot is given back. Streams that end together (a burst of jobs
        finishing) give theirs back in one pipelined round trip rather than one each."""
        if self._returning is None:
            self._returning = []
            self._returned = asyncio.create_task(self._give_back(self._returning))
        self._returning.append((self.PREFIX + user_id, stream_id))
        # shielded: a stream cancelled meanwhile must not cancel the others' round trip
        await asyncio.shield(self._returned)

    async def _give_back(self, slots: list[tuple[str, str]]) -> None:
        await asyncio.sleep(0)  # the streams ending in this turn of the event loop join in
        self._returning = None
        pipe = self.client.pipeline(transaction=False)
        for key, stream_id in slots:
            pipe.zrem(key, stream_id)
        with contextlib.suppress(redis.RedisError):
            await pipe.execute()


