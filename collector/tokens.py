"""Secrets the collector hands out: API tokens, console sessions and their CSRF tokens, enrollment tokens.

Each is 256 random bits, shown once, and stored only as its SHA-256 (a stolen store gives no usable token). A
prefix says what a secret is (`xjt_` API token, `xje_` enrollment token) so a leaked one is recognised by secret
scanners and by people, and so the wrong kind pasted in the wrong place gets a clear error.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

API_PREFIX = "xjt_"
ENROLL_PREFIX = "xje_"
SESSION_COOKIE = "xunjian_session"
CSRF_HEADER = "X-CSRF-Token"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_token() -> str:
    return API_PREFIX + secrets.token_urlsafe(32)


def new_enrollment_token() -> str:
    return ENROLL_PREFIX + secrets.token_urlsafe(32)


def new_session() -> tuple[str, str]:
    """(session id for the cookie, CSRF token the page sends back in X-CSRF-Token)."""
    return secrets.token_urlsafe(32), secrets.token_urlsafe(24)


def same(a: str, b: str) -> bool:
    """Compare secrets in constant time."""
    return hmac.compare_digest(a.encode(), b.encode())
