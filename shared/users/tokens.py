"""JWT access tokens. The algorithm is pinned: `alg: none` or another key is refused."""

from __future__ import annotations

import time
import uuid

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


def verify_token(settings: Settings, token: str) -> dict:
    try:
        return jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[settings.jwt_algorithm],
            issuer=ISSUER,
            options={"require": ["sub", "exp", "iat", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired("The token has expired.") from exc
    except jwt.PyJWTError as exc:
        raise TokenInvalid("The token is not valid.") from exc
