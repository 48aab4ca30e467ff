"""Gemini adapter for the TextGenerator port, on the `google-genai` SDK.

Retries: the SDK retries 408/429/5xx and transport timeouts/connection errors itself, with
exponential backoff and jitter (tenacity, configured through `types.HttpRetryOptions`). We
do not retry again on top of it; one `generate` call is one SDK call, counted once by the
process-wide circuit breaker (a call that failed after all SDK attempts is one failure).

Errors out of here are ProviderErrors only:
  - ProviderUnavailable: 5xx/429/timeouts/connection failures after the SDK's retries,
    or the breaker is open;
  - ProviderAuthError: 401/403, or Google's 400 API_KEY_INVALID (how the Gemini API actually
    answers a wrong key);
  - TextBlockedError: blocked prompt, SAFETY/RECITATION/... finish, or no text at all;
  - ProviderRejected: any other 4xx.

The API key is only handed to the SDK; it never appears in a repr, log line or error.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from typing import TYPE_CHECKING, Any

import pydantic
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from shared.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
)
from shared.perform.text.base import GeneratedText, TextBlockedError, circuit_breaker
from shared.providers.resilience import CircuitBreaker

if TYPE_CHECKING:
    from shared.perform.prompt import VoiceNotePrompt

log = logging.getLogger(__name__)

PROVIDER = "gemini"
DEFAULT_MODEL = "gemini-2.5-flash"
RETRY_STATUS_CODES = [429, 500, 502, 503, 504]

SAFETY_CATEGORIES = (
    types.HarmCategory.HARM_CATEGORY_HARASSMENT,
    types.HarmCategory.HARM_CATEGORY_HATE_SPEECH,
    types.HarmCategory.HARM_CATEGORY_SEXUALLY_EXPLICIT,
    types.HarmCategory.HARM_CATEGORY_DANGEROUS_CONTENT,
)
SAFETY_SETTINGS = [
    types.SafetySetting(category=c, threshold=types.HarmBlockThreshold.BLOCK_MEDIUM_AND_ABOVE)
    for c in SAFETY_CATEGORIES
]

# Finish reasons that still come with usable text. MAX_TOKENS text is returned as is and
# marked `truncated`; the composer decides. Every other reason (SAFETY, RECITATION, OTHER,
# BLOCKLIST, PROHIBITED_CONTENT, SPII, LANGUAGE, new ones...) means the text must not be used.
_USABLE_FINISH = {None, "STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"}


def _transport_errors() -> tuple[type[BaseException], ...]:
    """httpx and httpx2 (the SDK's default backend in 3.x) transport errors: timeouts,
    refused connections, dropped connections. The SDK re-raises them after its retries."""
    found: list[type[BaseException]] = []
    for module in ("httpx", "httpx2"):
        try:
            found.append(__import__(module).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(found)


_TRANSPORT_ERRORS = _transport_errors()


def _enum_value(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _retry_delay(details: Any) -> float | None:
    """Google puts the wait in a RetryInfo detail: {"retryDelay": "17s"}."""
    try:
        for d in details.get("error", {}).get("details", []) or []:
            delay = d.get("retryDelay")
            if delay:
                return float(re.sub(r"[^\d.]", "", delay))
    except (AttributeError, TypeError, ValueError):
        pass
    return None


def _error_reason(details: Any) -> str | None:
    """The ErrorInfo `reason` (e.g. API_KEY_INVALID) of a Google error body, if any."""
    try:
        for d in details.get("error", {}).get("details", []) or []:
            if d.get("reason"):
                return str(d["reason"])
    except (AttributeError, TypeError):
        pass
    return None


def map_api_error(exc: genai_errors.APIError, provider: str = PROVIDER) -> ProviderError:
    """Translate an SDK APIError (raised after the SDK's own retries) into our hierarchy."""
    code = int(exc.code or 0)
    status = exc.status or ""
    reason = _error_reason(exc.details)
    message = f"{provider} answered {code} {status}: {exc.message or 'no message'}"
    kw = dict(provider=provider, http_status=code, provider_code=reason or status or None)
    if code in (401, 403) or reason in ("API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED"):
        return ProviderAuthError(message, **kw)
    if code == 429 or code >= 500 or code == 408:
        return ProviderUnavailable(message, retry_after=_retry_delay(exc.details), **kw)
    return ProviderRejected(message, **kw)


class GeminiTextGenerator:
    """TextGenerator backed by the Gemini API. Thread-safe; the SDK client is created lazily so
    a generator built before a Celery prefork fork does not share a connection pool."""

    name = PROVIDER

    def __init__(
        self,
        api_key: str,
        *,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        api_version: str | None = None,  # None: the SDK's default (v1 in google-genai 3.x)
        timeout_s: float = 20.0,  # per HTTP attempt
        retry_attempts: int = 3,  # total SDK attempts, the first included
        retry_initial_delay_s: float = 1.0,
        retry_max_delay_s: float = 8.0,
        retry_jitter_s: float = 1.0,
        temperature: float = 0.9,
        max_output_tokens: int | None = None,  # None: sized from the prompt's word target
        thinking_budget: int | None | str = "auto",
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if not api_key or not api_key.strip():
            raise ValueError("a Gemini API key is required (use the local generator without one)")
        self.__api_key = api_key.strip()
        self.model = model
        self.base_url = base_url
        self.api_version = api_version
        self.timeout_s = timeout_s
        self.retry_options = types.HttpRetryOptions(
            attempts=max(1, retry_attempts),
            initial_delay=retry_initial_delay_s,
            max_delay=retry_max_delay_s,
            jitter=retry_jitter_s,
            http_status_codes=RETRY_STATUS_CODES,
        )
        self.temperature = temperature
        self.max_output_tokens = max_output_tokens
        # 2.5 Flash models think by default, which adds latency and eats the output-token
        # budget; a short note needs no thinking, so turn it off there. Pro models refuse a
        # zero budget, so leave them (and unknown models) on the model's default.
        if thinking_budget == "auto":
            thinking_budget = 0 if "flash" in model else None
        self.thinking_budget = thinking_budget
        self.breaker = breaker or circuit_breaker(PROVIDER)
        self._client: genai.Client | None = None
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:  # never the key
        return f"GeminiTextGenerator(model={self.model!r}, base_url={self.base_url!r})"

    # ------------------------------------------------------------ SDK plumbing

    def _sdk(self) -> genai.Client:
        with self._client_lock:
            if self._client is None:
                self._client = genai.Client(
                    api_key=self.__api_key,
                    http_options=types.HttpOptions(
                        base_url=self.base_url,
                        api_version=self.api_version,
                        timeout=int(self.timeout_s * 1000),  # the SDK takes milliseconds
                        retry_options=self.retry_options,
                    ),
                )
            return self._client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _config(self, prompt: VoiceNotePrompt) -> types.GenerateContentConfig:
        # Room for the longest allowed note (about 1.5 tokens per word in Spanish, less in
        # English) with a wide margin: hitting the limit cuts the note mid-sentence.
        max_tokens = self.max_output_tokens or max(256, (prompt.max_words or 150) * 4)
        return types.GenerateContentConfig(
            system_instruction=prompt.system_instruction,
            temperature=self.temperature,
            max_output_tokens=max_tokens,
            candidate_count=1,
            safety_settings=SAFETY_SETTINGS,
            thinking_config=(types.ThinkingConfig(thinking_budget=self.thinking_budget)
                             if self.thinking_budget is not None else None),
            # No tools are sent; this only turns off the SDK's client-side function-calling loop.
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )

    # ------------------------------------------------------------ the port

    def generate(self, prompt: VoiceNotePrompt) -> GeneratedText:
        # Through the breaker only: no retry on top of the SDK's, but the same breaker
        # accounting as every other provider (unavailable = failure; a 4xx or a blocked
        # answer = the provider is healthy).
        return self.breaker.call(lambda: self._generate_once(prompt))

    def _generate_once(self, prompt: VoiceNotePrompt) -> GeneratedText:
        started = time.monotonic()
        try:
            response = self._sdk().models.generate_content(
                model=self.model, contents=prompt.user_content, config=self._config(prompt)
            )
        except genai_errors.APIError as exc:
            err = map_api_error(exc)
            log.warning("gemini_error", extra={"http_status": err.http_status, "code": err.provider_code,
                                               "error_class": type(err).__name__})
            raise err from None
        except _TRANSPORT_ERRORS as exc:
            log.warning("gemini_unreachable", extra={"error_class": type(exc).__name__})
            raise ProviderUnavailable(
                f"{PROVIDER} did not answer ({type(exc).__name__}) after "
                f"{self.retry_options.attempts} attempt(s).", provider=PROVIDER,
            ) from None
        except (genai_errors.UnknownApiResponseError, json.JSONDecodeError, pydantic.ValidationError) as exc:
            # A 200 whose body is not a GenerateContentResponse: a proxy or a bad deploy.
            raise ProviderUnavailable(f"{PROVIDER} sent an unreadable answer: {type(exc).__name__}",
                                           provider=PROVIDER) from None
        result = self._parse(response)
        log.info("gemini_text_generated", extra={
            "model": result.model, "finish_reason": result.finish_reason, "chars": len(result.text),
            "prompt_tokens": result.prompt_tokens, "output_tokens": result.output_tokens,
            "latency_ms": int((time.monotonic() - started) * 1000),
        })
        return result

    def _parse(self, response: types.GenerateContentResponse) -> GeneratedText:
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            reason = _enum_value(feedback.block_reason) or "BLOCKED"
            raise TextBlockedError(f"{PROVIDER} refused the prompt ({reason}).", reason=reason,
                                   provider=PROVIDER)
        candidates = response.candidates or []
        if not candidates:
            raise TextBlockedError(f"{PROVIDER} returned no candidates.", reason="NO_CANDIDATES",
                                   provider=PROVIDER)
        candidate = candidates[0]
        finish = _enum_value(candidate.finish_reason)
        if finish not in _USABLE_FINISH:
            raise TextBlockedError(f"{PROVIDER} stopped writing ({finish}).", reason=finish or "BLOCKED",
                                   provider=PROVIDER)
        parts = (candidate.content.parts if candidate.content else None) or []
        # Thought summaries are not part of the answer, and `response.text` would warn on
        # non-text parts; join the text parts ourselves.
        text = "".join(p.text for p in parts if p.text and not p.thought).strip()
        if not text:
            raise TextBlockedError(f"{PROVIDER} returned no text (finish reason {finish}).",
                                   reason="EMPTY", provider=PROVIDER)
        usage = response.usage_metadata
        return GeneratedText(
            text=text,
            model=response.model_version or self.model,
            provider=PROVIDER,
            finish_reason=finish,
            prompt_tokens=usage.prompt_token_count if usage else None,
            output_tokens=usage.candidates_token_count if usage else None,
            total_tokens=usage.total_token_count if usage else None,
        )
