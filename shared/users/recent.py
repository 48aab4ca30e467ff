"""Users as read moments ago, for the request paths that need only who is asking and cheap
preconditions (submitting a note, following a job, listing recordings).

One read of the user per request was a third of the submit path's database work. An entry
lives `ttl_s` seconds (5 by default): a token of a deleted account, or a role change, takes
effect that much later on these paths; screens that show the account (`/user/me`, settings,
voice) read it fresh. A refusal decided on a cached user (no voice yet, no characters left) is
checked again on a fresh read before it is answered, so a voice cloned or a quota reset
moments ago is never refused; this process's own writes to a user `forget` the entry.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pymongo.database import Database

from shared.users.account import Account
from shared.users.service import get_account

DEFAULT_TTL_S = 5.0
MAX_ENTRIES = 10_000


class RecentUsers:
    def __init__(self, ttl_s: float = DEFAULT_TTL_S, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, Account]] = OrderedDict()

    def cached(self, user_id: str) -> Account | None:
        """The user if read less than `ttl_s` ago, else None. No I/O."""
        with self._lock:
            entry = self._entries.get(user_id)
            if entry is None:
                return None
            if time.monotonic() - entry[0] > self.ttl_s:
                del self._entries[user_id]
                return None
            return entry[1]

    def read(self, db: Database, user_id: str) -> Account:
        """A fresh read, remembered (frozen, so every request may share it). NotFound when the
        account does not exist."""
        user = get_account(db, user_id)
        with self._lock:
            self._entries[user_id] = (time.monotonic(), user)
            self._entries.move_to_end(user_id)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return user

    def forget(self, user_id: str) -> None:
        with self._lock:
            self._entries.pop(user_id, None)
