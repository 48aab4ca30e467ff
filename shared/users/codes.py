"""Activation codes: unique, single use, with an expiry. Claimed atomically at registration."""

from __future__ import annotations

import secrets
from datetime import timedelta

from pymongo.database import Database

from shared.clock import now

# Crockford base32 without look-alikes (no I, L, O, U): codes are read aloud and typed.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    return f"NV-{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalize_code(code: str) -> str:
    return code.strip().upper()


def create_codes(db: Database, count: int, ttl_days: int, created_by: str | None = None) -> list[str]:
    ts = now()
    docs = [{"code": _new_code(), "used_by": None, "used_at": None, "created_at": ts,
             "created_by": created_by, "expires_at": ts + timedelta(days=ttl_days)} for _ in range(count)]
    db["activation_codes"].insert_many(docs, ordered=False)
    return [d["code"] for d in docs]


def claim_code(db: Database, code: str, claimant: str) -> bool:
    """Mark the code used by `claimant` if it is unused and unexpired; True when we won it."""
    ts = now()
    doc = db["activation_codes"].find_one_and_update(
        {"code": normalize_code(code), "used_by": None, "expires_at": {"$gt": ts}},
        {"$set": {"used_by": claimant, "used_at": ts}},
    )
    return doc is not None


def release_code(db: Database, code: str, claimant: str) -> None:
    """Undo a claim whose registration did not complete."""
    db["activation_codes"].update_one({"code": normalize_code(code), "used_by": claimant},
                                      {"$set": {"used_by": None, "used_at": None}})


def confirm_code(db: Database, code: str, claimant: str, user_id: str) -> None:
    db["activation_codes"].update_one({"code": normalize_code(code), "used_by": claimant},
                                      {"$set": {"used_by": user_id}})


def ensure_indexes(db: Database) -> None:
    db["activation_codes"].create_index("code", unique=True)
