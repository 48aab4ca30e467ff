"""Write the voice note: generate → clean → check, one retry, then the local composer.

Policy (docs/ARCHITECTURE.md, "Perform"):
  - A draft that fails the post-checks, or a rejected/blocked answer, gets one retry with the
    same generator; the retry prompt says what was wrong with the draft.
  - ProviderUnavailable (the SDK's retries are exhausted, or the circuit is open) and
    ProviderAuthError (our key is wrong) skip the retry: asking again right away would only
    add latency, and for an open circuit it would fail instantly anyway.
  - In every failing case the local template composer writes the note. We chose to fall
    back rather than fail the job: the user asked for a note in their voice and still gets
    one, a little less personal. `fell_back=True` and `problems` let the caller log and count
    it, so a provider outage or a bad key is visible in metrics, not silent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from shared.errors import ProviderAuthError, ProviderError, ProviderUnavailable
from shared.perform.prompt import VoiceNotePrompt
from shared.perform.text.base import GeneratedText, TextGenerator
from shared.perform.text_checks import check_voice_note, clean_voice_note

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 2  # the first try and one retry with the same generator


@dataclass(frozen=True)
class ComposedNote:
    text: str
    provider: str
    model: str
    attempts: int  # calls made to the primary generator
    fell_back: bool  # the local composer wrote the note after the primary failed
    problems: list[str] = field(default_factory=list)  # what went wrong along the way
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None


def _draft_problems(draft: GeneratedText, text: str, prompt: VoiceNotePrompt) -> list[str]:
    problems = check_voice_note(text, prompt)
    if draft.truncated:
        problems.insert(0, "the text was cut off at the output token limit")
    return problems


def compose_voice_note(generator: TextGenerator, fallback: TextGenerator,
                       prompt: VoiceNotePrompt) -> ComposedNote:
    problems: list[str] = []
    attempts = 0
    attempt_prompt = prompt
    # The local composer configured as the writer is not a fallback for itself: it writes once.
    primary_is_fallback = generator is fallback or generator.name == fallback.name
    if not primary_is_fallback:
        while attempts < MAX_ATTEMPTS:
            attempts += 1
            try:
                draft = generator.generate(attempt_prompt)
            except (ProviderUnavailable, ProviderAuthError) as exc:
                problems.append(f"{generator.name} attempt {attempts}: {exc.code}: {exc.message}")
                log_fn = log.error if isinstance(exc, ProviderAuthError) else log.warning
                log_fn("text_provider_failed", extra={"provider": generator.name, "attempt": attempts,
                                                      "error_code": exc.code, "error_class": type(exc).__name__})
                break
            except ProviderError as exc:  # rejected or blocked: worth one more try
                problems.append(f"{generator.name} attempt {attempts}: {exc.code}: {exc.message}")
                log.warning("text_provider_rejected", extra={"provider": generator.name, "attempt": attempts,
                                                             "error_class": type(exc).__name__})
                continue
            except Exception:  # a bug in an adapter must not cost the user their note
                log.exception("text_provider_crashed", extra={"provider": generator.name, "attempt": attempts})
                problems.append(f"{generator.name} attempt {attempts}: unexpected error")
                break
            text = clean_voice_note(draft.text, prompt.language)
            issues = _draft_problems(draft, text, prompt)
            if not issues:
                return ComposedNote(text, draft.provider, draft.model, attempts, False, problems,
                                    draft.finish_reason, draft.prompt_tokens, draft.output_tokens)
            problems.extend(f"{generator.name} attempt {attempts}: {issue}" for issue in issues)
            log.warning("text_checks_failed", extra={"provider": generator.name, "attempt": attempts,
                                                     "issues": issues})
            attempt_prompt = prompt.with_feedback(issues)

    draft = fallback.generate(prompt)
    text = clean_voice_note(draft.text, prompt.language)
    issues = _draft_problems(draft, text, prompt)
    if issues:  # the local composer is tested to pass; if it ever does not, say so loudly
        log.error("fallback_text_checks_failed", extra={"provider": fallback.name, "issues": issues})
        problems.extend(f"{fallback.name}: {issue}" for issue in issues)
    fell_back = not primary_is_fallback
    if fell_back:
        log.warning("text_fell_back", extra={"provider": generator.name, "fallback": fallback.name,
                                             "attempts": attempts})
    return ComposedNote(text, draft.provider, draft.model, attempts, fell_back, problems,
                        draft.finish_reason, draft.prompt_tokens, draft.output_tokens)
