"""Connections to MongoDB and Redis, created once per process and shared.

Both clients reconnect by themselves: when a store comes back after an outage, the next
call succeeds without a restart. Timeouts are short so that an outage turns into a clear
503 quickly instead of a hung request.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pymongo
import redis
import redis.asyncio as aredis
from pymongo import monitoring
from pymongo.database import Database

from shared.config import Settings

_lock = threading.Lock()
_mongo: dict[tuple[str, int], pymongo.MongoClient] = {}
_redis: dict[tuple[str, float], redis.Redis] = {}

#: exceptions that mean "a store is unreachable", mapped to 503 SERVICE_UNAVAILABLE
STORE_DOWN_ERRORS: tuple[type[BaseException], ...] = (
    pymongo.errors.ConnectionFailure,  # includes AutoReconnect, ServerSelectionTimeoutError
    pymongo.errors.NetworkTimeout,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
)


def mongo_client(settings: Settings) -> pymongo.MongoClient:
    if not settings.mongo_url:
        raise RuntimeError("MONGO_URL is not set (the dev runner sets it; see README)")
    return _cached(_mongo, (settings.mongo_url, settings.mongo_timeout_ms), lambda: _new_mongo_client(settings))


def _cached(cache: dict, key: tuple, make):
    """One client per settings key for the whole process: clients pool their connections."""
    with _lock:
        client = cache.get(key)
        if client is None:
            client = cache[key] = make()
        return client


def _new_mongo_client(settings: Settings, **extra) -> pymongo.MongoClient:
    return pymongo.MongoClient(
        settings.mongo_url,
        serverSelectionTimeoutMS=settings.mongo_timeout_ms,
        connectTimeoutMS=settings.mongo_timeout_ms,
        socketTimeoutMS=max(settings.mongo_timeout_ms * 10, 30000),
        tz_aware=True,
        appname="newvisions",
        **extra,
    )


def mongo_db(settings: Settings) -> Database:
    return mongo_client(settings)[settings.mongo_db]


def redis_client(settings: Settings) -> redis.Redis:
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is not set (the dev runner sets it; see README)")
    return _cached(_redis, (settings.redis_url, settings.redis_timeout_s), lambda: _new_redis_client(settings))


def redis_command_timeout_s(settings: Settings) -> float:
    """How long a Redis command may take before it counts as an outage."""
    return max(settings.redis_timeout_s, 5.0)


def _new_redis_client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.redis_timeout_s,
        socket_timeout=redis_command_timeout_s(settings),
        health_check_interval=15,
        retry_on_timeout=False,
        decode_responses=True,
    )


#: connections of an API process's asyncio Redis client (live job events, stream slots); its
#: commands take well under a millisecond, so a few dozen carry any burst an event loop can make
ASYNC_REDIS_CONNECTIONS = 64


def async_redis_client(settings: Settings, max_connections: int = ASYNC_REDIS_CONNECTIONS) -> aredis.Redis:
    """The asyncio client of an API process (one per process; the caller closes it).

    Its pool makes a command wait for a free connection: redis-py's default asyncio pool
    instead fails at once ("Too many connections") past 100 commands in flight, which a burst
    of stream opens reaches on a healthy Redis and which would reach the client as a 503.
    The wait is bounded by the command timeout, so a Redis that stopped answering still turns
    into a 503 rather than a hung request; `socket_timeout` bounds a command itself, so a hung
    connection cannot hold a pool slot for ever."""
    pool = aredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=max_connections,
        timeout=redis_command_timeout_s(settings),
        socket_connect_timeout=settings.redis_timeout_s,
        socket_timeout=redis_command_timeout_s(settings),
        health_check_interval=15,
        decode_responses=True,
    )
    return aredis.Redis.from_pool(pool)


def reset_clients(*, close: bool = True) -> None:
    """Drop cached clients: between test sessions (close), or in a worker's pool child after
    fork (close=False: the sockets are the parent's, which may still be using them; the child
    only forgets them and opens its own)."""
    with _lock:
        if close:
            for client in _mongo.values():
                client.close()
            for r in _redis.values():
                r.close()
        _mongo.clear()
        _redis.clear()


class RoundTrips(monitoring.CommandListener):
    """Counts the MongoDB commands (round trips) sent through one client, as "command collection".
    Benchmarks and tests use it: unlike times, counts do not depend on the machine's load."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.commands: list[str] = []

    def started(self, event) -> None:
        target = event.command.get(event.command_name)
        with self._lock:
            self.commands.append(f"{event.command_name} {target}" if isinstance(target, str) else event.command_name)

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass

    def take(self) -> list[str]:
        """The commands counted since the last take."""
        with self._lock:
            taken, self.commands = self.commands, []
        return taken


@contextlib.contextmanager
def count_round_trips(settings: Settings) -> Iterator[RoundTrips]:
    """While open, every store user with these settings' MongoDB (`mongo_client(settings)`)
    shares a client whose commands are counted; the counter is yielded. The client in use
    before is put back afterwards, untouched (other users of the same URL keep theirs)."""
    counter = RoundTrips()
    client = _new_mongo_client(settings, event_listeners=[counter])
    key = (settings.mongo_url, settings.mongo_timeout_ms)
    with _lock:
        previous = _mongo.get(key)
        _mongo[key] = client
    try:
        yield counter
    finally:
        with _lock:
            if previous is None:
                _mongo.pop(key, None)
            else:
                _mongo[key] = previous
        client.close()
