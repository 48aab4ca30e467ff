"""ElevenLabs adapter for the VoiceProvider port, over HTTP with httpx.

What it takes care of, so the domain does not have to:

* one pooled `httpx.Client` per adapter, explicit connect/read/write/pool timeouts, and a longer
  read timeout for synthesis (the provider streams the audio only once it is generated);
* retries with backoff and jitter on 5xx, 429, timeouts and connection failures; none on the
  other 4xx, which the provider would answer the same way again;
* one circuit breaker per provider and base URL, shared by every adapter in the process
  (`shared_breaker`), so a dead provider is not hammered by each worker thread in turn;
* mapping ElevenLabs' error bodies (`{"detail": {"status"|"code": ..., "message": ...}}`, a
  plain-string detail, or FastAPI's 422 list) to the ProviderError classes;
* never letting the API key reach a log line, an exception message or a stored job error.

Idempotency. Rename, delete, list, synthesis and subscription can be repeated safely (a repeated
synthesis may bill twice, which beats losing the note). `POST /v1/voices/add` cannot: a request
that timed out while waiting for the answer may still have created the voice. create_voice is
therefore only retried when the request demonstrably was not acted on (a connection that never
opened, a 5xx/429 answer), and even those retries are safe only because callers reconcile by
name: remote names are derived from our voice records, so a duplicate can be found with
list_voices and deleted. See `RequestOutcomeUnknown`.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from shared.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderRejected,
    ProviderUnavailable,
    RequestOutcomeUnknown,
    VoiceLimitReached,
    VoiceNotFound,
)
from shared.providers import resilience
from shared.providers.resilience import CircuitBreaker, CircuitOpenError, RetryPolicy, call_with_retries
from shared.providers.voice.base import RemoteVoice, Subscription, Synthesis, VoiceSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

PROVIDER_NAME = "elevenlabs"
DEFAULT_BASE_URL = "https://api.elevenlabs.io"
DEFAULT_MODEL_ID = "eleven_turbo_v2_5"
OUTPUT_FORMAT = "mp3_44100_128"

#: the provider rejects speeds outside this range
SPEED_MIN, SPEED_MAX = 0.7, 1.2
#: /v2/voices accepts at most 100 per page
MAX_PAGE_SIZE = 100
#: a bound on pages, in case the provider keeps saying has_more (a bug there must not hang a worker)
MAX_PAGES = 1000
#: wait used for a rate-limit 429 that carries no Retry-After (RetryPolicy still caps it)
DEFAULT_RATE_LIMIT_WAIT_S = 2.0

# 429 codes. "Concurrent" means too many requests in flight on the account: one finishes in
# seconds, so a short jittered retry is right. "Rate" means the account or the provider is
# throttling: back off, for as long as Retry-After says when it says.
_CONCURRENCY_CODES = frozenset({"concurrent_limit_exceeded", "too_many_concurrent_requests"})
_QUOTA_CODES = frozenset({"quota_exceeded", "max_character_limit_exceeded"})

OnCall = Callable[[str, str, float], None]


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 5.0
    read_s: float = 30.0
    #: synthesis answers only once the audio is generated; long notes take a while
    synthesis_read_s: float = 120.0
    write_s: float = 30.0  # uploading a voice sample (a few MB)
    pool_s: float = 10.0  # waiting for a free pooled connection

    def default(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect_s, read=self.read_s, write=self.write_s, pool=self.pool_s)

    def synthesis(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect_s, read=self.synthesis_read_s, write=self.write_s,
                             pool=self.pool_s)


# --- circuit breakers, one per provider and base URL, shared within the process ---------------

def shared_breaker(base_url: str = DEFAULT_BASE_URL, *, failure_threshold: int = 5,
                   reset_timeout_s: float = 30.0) -> CircuitBreaker:
    """The process-wide breaker for ElevenLabs at `base_url` (see resilience.shared_breaker)."""
    return resilience.shared_breaker(PROVIDER_NAME, base_url, failure_threshold=failure_threshold,
                                     reset_timeout_s=reset_timeout_s)


reset_breakers = resilience.reset_breakers


# --- the adapter ----------------------------------------------------------------------------


class ElevenLabsVoiceProvider:
    """VoiceProvider for ElevenLabs. Thread-safe; build one per process (not before a fork).

    `on_call(operation, outcome, duration_s)` is called once per HTTP attempt (and once for a call
    the open circuit refused), for metrics. `outcome` is "ok", the provider's error code
    (e.g. "voice_not_found", "rate_limit_exceeded"), "http_<status>" when the body names none,
    "timeout", "connection_error", "bad_response" or "circuit_open". Operations are the port's
    method names."""

    name = PROVIDER_NAME

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        model_id: str = DEFAULT_MODEL_ID,
        timeouts: Timeouts | None = None,
        retry_policy: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        on_call: OnCall | None = None,
        remove_background_noise: bool = False,
        list_page_size: int = MAX_PAGE_SIZE,
        rate_limit_wait_s: float = DEFAULT_RATE_LIMIT_WAIT_S,
        max_connections: int = 20,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise ValueError("an ElevenLabs API key is required")
        if not 1 <= list_page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"list_page_size must be within 1-{MAX_PAGE_SIZE}")
        self.base_url = base_url.rstrip("/")
        self.model_id = model_id
        self.timeouts = timeouts or Timeouts()
        self.retry_policy = retry_policy or RetryPolicy()
        self.breaker = breaker or shared_breaker(self.base_url)
        self.remove_background_noise = remove_background_noise
        self.list_page_size = list_page_size
        self.rate_limit_wait_s = rate_limit_wait_s
        self._on_call = on_call
        self._sleep = sleep
        # Kept only to scrub it from anything the provider echoes back.
        self._secret = api_key
        self._client = httpx.Client(
            base_url=self.base_url,
            headers={"xi-api-key": api_key, "User-Agent": "newvisions/0.1"},
            timeout=self.timeouts.default(),
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
        )

    def __repr__(self) -> str:
        return f"ElevenLabsVoiceProvider(base_url={self.base_url!r}, model_id={self.model_id!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ElevenLabsVoiceProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the port ---------------------------------------------------------------------------

    def create_voice(self, name: str, sample_mp3: bytes, labels: dict[str, str] | None = None) -> str:
        """Clone a voice; return its voice_id.

        Retried only when the provider cannot have created the voice (connection refused, a
        5xx/429 answer). When the outcome is unknown (the answer was lost) this raises
        RequestOutcomeUnknown at once: a blind retry could create a second voice and take a
        second slot. The caller reconciles by `name` (derived from our voice record) with
        list_voices, then adopts the voice it finds or creates it again."""
        data = {"name": name, "remove_background_noise": "true" if self.remove_background_noise else "false"}
        if labels:
            data["labels"] = json.dumps(labels)
        files = [("files", ("sample.mp3", sample_mp3, "audio/mpeg"))]
        return self._call(
            "create_voice",
            lambda: self._client.post("/v1/voices/add", data=data, files=files),
            parse=lambda r: _require_str(r.json(), "voice_id"),
            idempotent=False,
        )

    def rename_voice(self, voice_id: str, name: str) -> None:
        # The endpoint insists on multipart even without a file; httpx only sends multipart
        # when there are files, so the name goes as a file-less form part.
        self._call(
            "rename_voice",
            lambda: self._client.post(f"/v1/voices/{_path(voice_id)}/edit", files={"name": (None, name)}),
            parse=lambda r: None,
        )

    def delete_voice(self, voice_id: str) -> None:
        # A retry after a lost answer may report voice_not_found for a voice this very call
        # deleted; callers deleting a voice treat VoiceNotFound as done.
        self._call("delete_voice", lambda: self._client.delete(f"/v1/voices/{_path(voice_id)}"),
                   parse=lambda r: None)

    def list_voices(self) -> Iterator[RemoteVoice]:
        token: str | None = None
        seen_tokens: set[str] = set()
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {"page_size": self.list_page_size}
            if token:
                params["next_page_token"] = token
            voices, has_more, token = self._call(
                "list_voices", lambda p=params: self._client.get("/v2/voices", params=p), parse=_parse_page,
            )
            yield from voices
            if not has_more:
                return
            if not token or token in seen_tokens:
                raise ProviderUnavailable(
                    "ElevenLabs list_voices: the provider said there were more voices but gave no new "
                    "page token.", provider=self.name, provider_code="bad_pagination")
            seen_tokens.add(token)
        raise ProviderUnavailable(f"ElevenLabs list_voices: gave up after {MAX_PAGES} pages.",
                                       provider=self.name, provider_code="bad_pagination")

    def synthesize(self, text: str, voice_id: str, settings: VoiceSettings) -> Synthesis:
        if not text.strip():
            raise ValueError("nothing to synthesize: the text is empty")
        payload = {"text": text, "model_id": self.model_id, "voice_settings": _settings_payload(settings)}
        return self._call(
            "synthesize",
            lambda: self._client.post(
                f"/v1/text-to-speech/{_path(voice_id)}",
                params={"output_format": OUTPUT_FORMAT},
                json=payload,
                headers={"Accept": "audio/mpeg"},
                timeout=self.timeouts.synthesis(),
            ),
            parse=lambda r: self._parse_synthesis(r, text),
        )

    def subscription(self) -> Subscription:
        return self._call("subscription", lambda: self._client.get("/v1/user/subscription"),
                          parse=_parse_subscription)

    # --- one logical call: attempts, retries, breaker, metrics --------------------------------

    def _call(self, operation: str, send: Callable[[], httpx.Response], *,
              parse: Callable[[httpx.Response], T], idempotent: bool = True) -> T:
        def attempt() -> T:
            return self._attempt(operation, send, parse, idempotent)

        def on_retry(attempt_no: int, exc: ProviderError) -> None:
            log.warning("ElevenLabs %s attempt %d failed (%s); retrying", operation, attempt_no,
                        exc.provider_code or exc.http_status or type(exc).__name__)

        try:
            return call_with_retries(
                attempt, policy=self.retry_policy, breaker=self.breaker, sleep=self._sleep,
                on_retry=on_retry,
                # A lost answer to a non-idempotent request must not be replayed: see the module doc.
                should_retry=lambda exc: not isinstance(exc, RequestOutcomeUnknown),
            )
        except CircuitOpenError:
            self._report(operation, "circuit_open", 0.0)
            raise

    def _attempt(self, operation: str, send: Callable[[], httpx.Response],
                 parse: Callable[[httpx.Response], T], idempotent: bool) -> T:
        started = time.monotonic()
        try:
            result = self._exchange(operation, send, parse, idempotent)
        except ProviderError as failure:
            outcome = failure.provider_code or _status_outcome(failure.http_status)
            self._report(operation, outcome, time.monotonic() - started)
            raise
        self._report(operation, "ok", time.monotonic() - started)
        return result

    def _exchange(self, operation: str, send: Callable[[], httpx.Response],
                  parse: Callable[[httpx.Response], T], idempotent: bool) -> T:
        """One request and its answer, as a result or a ProviderError.

        Errors are built inside the except blocks but raised outside them: an httpx exception
        holds the request and its headers (the key), and must not travel along as __context__."""
        failure: ProviderError | None = None
        try:
            response = send()
        except httpx.RequestError as exc:  # transport failures, and bodies that cannot be decoded
            failure = self._transport_failure(operation, exc, idempotent)
        if failure is not None:
            raise failure
        if not response.is_success:
            raise self._response_failure(operation, response, idempotent)
        try:
            return parse(response)
        except (ValueError, KeyError, TypeError) as exc:
            failure = self._unreadable_answer(operation, response, exc, idempotent)
        raise failure

    def _unreadable_answer(self, operation: str, response: httpx.Response, exc: Exception,
                           idempotent: bool) -> ProviderError:
        # A 2xx we cannot read: a proxy page, a truncated body, a changed schema. Transient as
        # far as we can tell; for create_voice the voice may exist all the same.
        cls = ProviderUnavailable if idempotent else RequestOutcomeUnknown
        return cls(self._scrub(f"ElevenLabs {operation}: unreadable answer (HTTP {response.status_code}, "
                               f"{type(exc).__name__}: {exc})."),
                   provider=self.name, http_status=response.status_code, provider_code="bad_response")

    def _transport_failure(self, operation: str, exc: httpx.RequestError, idempotent: bool) -> ProviderError:
        # Connect errors (and waiting for a pooled connection) happen before a byte of the
        # request left: the provider cannot have acted on it, so any call may be retried.
        refused = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
        code = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection_error"
        message = self._scrub(f"ElevenLabs {operation}: {type(exc).__name__} ({exc}).")
        if refused or idempotent:
            return ProviderUnavailable(message, provider=self.name, provider_code=code)
        return RequestOutcomeUnknown(
            message + " The request may have been carried out; reconcile before retrying.",
            provider=self.name, provider_code=code)

    def _response_failure(self, operation: str, response: httpx.Response, idempotent: bool) -> ProviderError:
        status = response.status_code
        code, provider_message = _error_detail(response)
        text = self._scrub(f"ElevenLabs {operation} failed: HTTP {status}"
                           + (f" {code}" if code else "")
                           + (f": {provider_message}" if provider_message else "."))
        kw = dict(provider=self.name, http_status=status, provider_code=code)
        if code == "voice_limit_reached":
            return VoiceLimitReached(text, **kw)
        if code == "voice_not_found":
            return VoiceNotFound(text, **kw)
        if code in _QUOTA_CODES:
            # Comes as a 401, so it must be told apart from a bad key by its code.
            return ProviderQuotaExceeded(text, **kw)
        if status in (401, 403) or code == "invalid_api_key":
            # A wrong key, or one lacking a permission: our configuration, not the request.
            return ProviderAuthError(text, **kw)
        if status == 429:
            retry_after = _retry_after(response)
            if retry_after is None and code not in _CONCURRENCY_CODES:
                retry_after = self.rate_limit_wait_s
            return ProviderUnavailable(text, retry_after=retry_after, **kw)
        if status == 504 and not idempotent:
            # A gateway gave up waiting for the provider, which may have finished the job.
            return RequestOutcomeUnknown(text, **kw)
        if status >= 500 or status == 408:
            return ProviderUnavailable(text, retry_after=_retry_after(response), **kw)
        return ProviderRejected(text, **kw)

    def _parse_synthesis(self, response: httpx.Response, text: str) -> Synthesis:
        content_type = response.headers.get("content-type", "")
        if not response.content or not content_type.startswith("audio/"):
            raise ValueError(f"expected audio, got {content_type or 'no content type'}")
        return Synthesis(audio=response.content, model_id=self.model_id, characters=len(text),
                         character_cost=_character_cost(response.headers))

    def _report(self, operation: str, outcome: str, duration_s: float) -> None:
        if self._on_call is None:
            return
        try:
            self._on_call(operation, outcome, duration_s)
        except Exception:  # metrics must never fail a call
            log.exception("ElevenLabs on_call hook failed")

    def _scrub(self, message: str) -> str:
        """Remove the API key from text that may echo it (a provider message, an httpx error)."""
        return message.replace(self._secret, "[redacted]") if self._secret in message else message


# --- request and response shapes ------------------------------------------------------------


def _path(voice_id: str) -> str:
    # An id is a path segment: quote it so that a ".." segment or a "?" cannot reach another endpoint.
    return quote(voice_id, safe="")


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def _settings_payload(settings: VoiceSettings) -> dict[str, Any]:
    return {
        "stability": _clamp(settings.stability, 0.0, 1.0),
        "similarity_boost": _clamp(settings.similarity_boost, 0.0, 1.0),
        "style": _clamp(settings.style, 0.0, 1.0),
        "use_speaker_boost": bool(settings.use_speaker_boost),
        "speed": _clamp(settings.speed, SPEED_MIN, SPEED_MAX),
    }


def _require_str(body: Any, key: str) -> str:
    value = body[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"'{key}' is not a non-empty string")
    return value


def _parse_page(response: httpx.Response) -> tuple[list[RemoteVoice], bool, str | None]:
    body = response.json()
    voices = [
        RemoteVoice(
            voice_id=_require_str(item, "voice_id"),
            name=item.get("name") or "",
            category=item.get("category"),
            labels={str(k): str(v) for k, v in (item.get("labels") or {}).items()},
        )
        for item in body["voices"]
    ]
    return voices, bool(body.get("has_more")), body.get("next_page_token")


def _parse_subscription(response: httpx.Response) -> Subscription:
    body = response.json()
    return Subscription(
        voice_limit=int(body["voice_limit"]),
        voice_slots_used=int(body["voice_slots_used"]),
        character_count=int(body["character_count"]),
        character_limit=int(body["character_limit"]),
    )


def _character_cost(headers: httpx.Headers) -> int | None:
    # The API reference names the header both ways; read either.
    raw = headers.get("character-cost") or headers.get("x-character-count")
    if raw is None:
        return None
    try:
        return int(math.ceil(float(raw)))
    except ValueError:
        return None


def _error_detail(response: httpx.Response) -> tuple[str | None, str]:
    """(code, message) from an error body, whichever of the known shapes it has."""
    try:
        body = response.json()
    except ValueError:
        # Load balancers answer 502/503 with HTML; keep a short, single-line excerpt.
        return None, " ".join(response.text.split())[:200]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        code = detail.get("status") or detail.get("code")
        message = detail.get("message") or ""
        return (str(code) if code else None), str(message)[:500]
    if isinstance(detail, list):  # FastAPI validation: [{"loc": [...], "msg": ...}, ...]
        parts = []
        for item in detail[:5]:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
        return "validation_error", "; ".join(parts)[:500]
    return None, str(detail)[:500]


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After as seconds; it may be a number of seconds or an HTTP date."""
    raw = response.headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _status_outcome(status: int | None) -> str:
    return f"http_{status}" if status else "error"
