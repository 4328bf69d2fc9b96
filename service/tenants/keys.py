"""API keys: random, prefixed, shown once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

DISPLAY_CHARS = 12


@dataclass(frozen=True)
class NewKey:
    plaintext: str  # shown to the user once, never stored
    display_prefix: str
    key_hash: str


def generate(prefix: str) -> NewKey:
    plaintext = f"{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(plaintext, plaintext[: len(prefix) + 1 + DISPLAY_CHARS], digest(plaintext))


def digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()
