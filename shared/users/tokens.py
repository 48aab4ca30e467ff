"""JWT access tokens. The algorithm is pinned: `alg: none` or another key is refused."""

from __future__ import annotations

import time
import uuid
from functools import lru_cache
from types import MappingProxyType
from typing import Mapping

import jwt

from shared.config import Settings
from shared.errors import TokenExpired, TokenInvalid

ISSUER = "newvisions"


def issue_token(settings: Settings, user_id: str, role: str) -> tuple[str, int]:
    ttl = settings.jwt_ttl_minutes * 60
    now = int(time.time())
    claims = {"sub": user_id, "role": role, "iat": now, "exp": now + ttl, "iss": ISSUER,
              "jti": uuid.uuid4().hex}
    token = jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=settings.jwt_algorithm)
    return token, ttl


#: tokens whose signature and claims were verified, by (token, key, algorithm)
VERIFIED_TOKENS_CACHED = 10_000


def verify_token(settings: Settings, token: str) -> Mapping:
    """The token's claims; TokenExpired or TokenInvalid otherwise.

    A client sends the same token with every request until it expires, and decoding it (base64,
    JSON, the HMAC, the claim checks) was ~5% of the submit path's CPU. The same bytes verified
    under the same key verify the same way, so a verified token is remembered; only its expiry,
    the one check that depends on the time, is made again on every use. Refusals are not
    remembered (each is decoded again, so it keeps its exact reason)."""
    claims = _verified(token, settings.jwt_secret.get_secret_value(), settings.jwt_algorithm)
    if claims["exp"] <= time.time():  # as PyJWT judges it, with no leeway
        raise TokenExpired("The token has expired.")
    return claims


@lru_cache(maxsize=VERIFIED_TOKENS_CACHED)
def _verified(token: str, key: str, algorithm: str) -> Mapping:
    try:
        claims = jwt.decode(token, key, algorithms=[algorithm], issuer=ISSUER,
                            options={"require": ["sub", "exp", "iat", "iss"]})
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired("The token has expired.") from exc
    except jwt.PyJWTError as exc:
        raise TokenInvalid("The token is not valid.") from exc
    return MappingProxyType(claims)  # shared by every request that sends this token: read-only
