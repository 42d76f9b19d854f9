"""Error fingerprints: one cause, one group in the failure inbox, whatever ids it mentions."""

from __future__ import annotations

import functools
import hashlib
import re


@functools.lru_cache(maxsize=4096)
def normalise_error(error: str) -> str:
    """The error with its variable parts replaced, so one cause groups as one fingerprint."""
    text = (error or "").lower()
    text = re.sub(r"https?://\S+", "<url>", text)
    text = re.sub(r"[\w.+-]+@[\w-]+\.[\w.]+", "<email>", text)
    text = re.sub(
        r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<uuid>", text
    )
    text = re.sub(r"\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b", "<hex>", text)
    text = re.sub(r"\d+", "<n>", text)
    return re.sub(r"\s+", " ", text).strip()[:160]


def fingerprint_of(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def failure_fingerprint(
    *, app: str, source: str, provider: str, failure_code: str, error: str
) -> str:
    """The inbox group of one failure (the same whether computed at write or at read time)."""
    return fingerprint_of(
        app, source, provider, failure_code or "unknown", normalise_error(error or "")
    )
