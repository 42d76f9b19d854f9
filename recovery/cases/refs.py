"""A case's ref: the customer's identity (a user, an email, a phone, or a payment that
belongs to no one yet), sealed so that a URL, a log line or an audit row never shows an
email or a phone. AES-SIV is deterministic: one customer has one ref, whoever searches."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from django.conf import settings

KINDS = ("user", "email", "phone", "payment")
PREFIX = "cus_"
PHONE_NOISE_RE = re.compile(r"[\s().-]")


class UnknownRef(ValueError):
    pass


@dataclass(frozen=True)
class Identity:
    kind: str
    value: str

    @property
    def fingerprint(self) -> str:
        """What the audit row keeps for an email or a phone: its hash, never the value."""
        if self.kind in ("user", "payment"):
            return f"{self.kind}:{self.value}"
        digest = hashlib.sha256(self.value.encode()).hexdigest()[:16]
        return f"{self.kind}:sha256:{digest}"


def _cipher() -> AESSIV:
    key = hashlib.sha512(f"case-ref:{settings.SECRET_KEY}".encode()).digest()
    return AESSIV(key)


def normalize_email(value: str) -> str:
    return value.strip().lower()


def normalize_phone(value: str) -> str:
    return PHONE_NOISE_RE.sub("", value.strip())


def seal(identity: Identity) -> str:
    plain = f"{identity.kind}:{identity.value}".encode()
    sealed = _cipher().encrypt(plain, None)
    return PREFIX + base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def unseal(ref: str) -> Identity:
    if not ref.startswith(PREFIX) or len(ref) > 600:
        raise UnknownRef(ref)
    body = ref[len(PREFIX) :]
    try:
        sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        kind, _, value = _cipher().decrypt(sealed, None).decode().partition(":")
    except (binascii.Error, ValueError, InvalidTag, UnicodeDecodeError) as exc:
        raise UnknownRef(ref) from exc
    if kind not in KINDS or not value:
        raise UnknownRef(ref)
    return Identity(kind, value)


def user_ref(user_id: int) -> str:
    return seal(Identity("user", str(user_id)))


def email_ref(email: str) -> str:
    return seal(Identity("email", normalize_email(email)))


def phone_ref(phone: str) -> str:
    return seal(Identity("phone", normalize_phone(phone)))


def payment_ref(payment_id: int) -> str:
    return seal(Identity("payment", str(payment_id)))
