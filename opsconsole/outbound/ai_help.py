"""AI help that fails open (the error-recovery specification's OpenAI enhancement): a model
behind an OpenAI-compatible endpoint drafts text from the console's material, and on any
failure the operator gets the raw material with `enhanced: false` and a `fallbackReason`,
never an error, and nothing waits on it.

Off unless AI_API_BASE_URL, AI_API_KEY and AI_MODEL are set; there is no simulated model
(the sandbox never stands in for it). Personal data is masked before anything leaves
(emails, phone numbers, links, secrets), the call has AI_TIMEOUT_SECONDS (30, the
specification's) and no retry, the endpoint passes the outbound guard, and every use is an
audit row. Its failures are the error table's "AI" category: low severity and silent (a log
line, no alert)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import openai
import structlog
from django.conf import settings
from django.db import models, transaction

from opsconsole.access.personal_data import mask_link, mask_text
from opsconsole.evidence import audit
from opsconsole.outbound.guard import DestinationRefused, checked_destination

logger = structlog.get_logger(__name__)

LINK_RE = re.compile(r"https?://\S+")
# The fallback reasons an operator (and the audit row) may read.
NOT_CONFIGURED = "not_configured"
TIMEOUT = "timeout"
RATE_LIMITED = "rate_limited"
UNAVAILABLE = "unavailable"
INVALID_RESPONSE = "invalid_response"
ENDPOINT_NOT_ALLOWED = "endpoint_not_allowed"


FALLBACK_WORDS = {
    "not_configured": "is not configured here",
    "timeout": "did not answer in time",
    "rate_limited": "is refusing more requests for now",
    "unavailable": "is down",
    "invalid_response": "answered with something unusable",
    "endpoint_not_allowed": "is at an address the outbound rules refuse",
}


@dataclass(frozen=True)
class AiHelp:
    enhanced: bool
    text: str
    fallback_reason: str = ""

    @property
    def fallback_words(self) -> str:
        """Why there is no draft, for the operator reading the page."""
        return FALLBACK_WORDS.get(self.fallback_reason, "failed")

    def as_dict(self) -> dict[str, Any]:
        return {
            "enhanced": self.enhanced,
            "text": self.text,
            "fallbackReason": self.fallback_reason or None,
        }


def ai_configured() -> bool:
    return bool(settings.AI_API_BASE_URL and settings.AI_API_KEY and settings.AI_MODEL)


def masked_for_ai(text: str) -> str:
    """What may leave: emails and phone numbers masked, links reduced to their host."""
    return mask_text(LINK_RE.sub(lambda match: mask_link(match.group(0)), text))


def ai_help(
    *,
    purpose: str,
    instructions: str,
    material: str,
    actor: audit.Actor,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
) -> AiHelp:
    """The model's text for `material` (masked first), or the raw material with the reason
    it is not enhanced. Audited on `obj` (or `object_type`/`object_id`) either way."""
    result = _ask(instructions=instructions, material=masked_for_ai(material))
    if not result.enhanced:
        result = AiHelp(enhanced=False, text=material, fallback_reason=result.fallback_reason)
        # Low and silent (opsconsole/monitoring/error_categories.py): logged, paging no one.
        logger.info(
            "ai_help_fell_back",
            purpose=purpose,
            fallback_reason=result.fallback_reason,
            category="ai_enhancement_failure",
        )
    with transaction.atomic():
        audit.record(
            "platform.ai_help.used",
            obj=obj,
            object_type=object_type,
            object_id=object_id,
            actor=actor,
            metadata={
                "purpose": purpose,
                "enhanced": result.enhanced,
                "fallback_reason": result.fallback_reason,
                "model": settings.AI_MODEL if ai_configured() else "",
            },
        )
    return result


def _ask(*, instructions: str, material: str) -> AiHelp:
    if not ai_configured():
        return AiHelp(False, "", NOT_CONFIGURED)
    try:
        checked_destination(settings.AI_API_BASE_URL)
    except DestinationRefused:
        return AiHelp(False, "", ENDPOINT_NOT_ALLOWED)
    client = openai.OpenAI(
        base_url=settings.AI_API_BASE_URL,
        api_key=settings.AI_API_KEY,
        timeout=float(settings.AI_TIMEOUT_SECONDS),
        max_retries=0,  # fail open at once: the operator has the raw material meanwhile
    )
    try:
        completion = client.chat.completions.create(
            model=settings.AI_MODEL,
            messages=[
                {"role": "system", "content": instructions},
                {"role": "user", "content": material},
            ],
        )
        text = completion.choices[0].message.content or ""
    except openai.APITimeoutError:
        return AiHelp(False, "", TIMEOUT)
    except openai.RateLimitError:
        return AiHelp(False, "", RATE_LIMITED)
    except (openai.APIConnectionError, openai.InternalServerError):
        return AiHelp(False, "", UNAVAILABLE)
    except (openai.APIError, ValueError, TypeError, AttributeError, IndexError):
        # A 4xx the model's API chose, or an answer that is not chat completions' shape.
        return AiHelp(False, "", INVALID_RESPONSE)
    finally:
        client.close()
    if not text.strip():
        return AiHelp(False, "", INVALID_RESPONSE)
    return AiHelp(True, text.strip())
