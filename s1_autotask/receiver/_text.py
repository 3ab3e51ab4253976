"""Request-derived text made fit to keep, answer with and log.

An authenticated sender templates its bodies and headers, so anything it sends may
carry the webhook secret (a variable put in the wrong field) or terminal escapes (a
forged X-Forwarded-For). Reasons the store keeps and answers the receiver gives go
through `mask_secret`; values from a request that reach a log line go through
`loggable`.
"""

from __future__ import annotations

from s1_autotask.redaction import MASK, SecretRedactionFilter

__all__ = ["loggable", "mask_secret"]

# Shorter starts of a secret are too likely to be ordinary text.
_MIN_CUT_SECRET = 8
# How messages mark a value cut short: "'abcd'..." (a quoted value), "abcd..." (a
# map key or a header).
_CUT_MARKERS = ("'...", "...")
_LOG_LIMIT = 200


def mask_secret(text: str, secret: str) -> str:
    """``text`` with the secret masked: as sent, as quoted, and cut short."""
    if not secret:
        return text
    masked = SecretRedactionFilter([secret]).mask(text)
    # Error messages cut long values short; the start of a secret left at a cut
    # is as good as half the secret.
    for length in range(len(secret) - 1, _MIN_CUT_SECRET - 1, -1):
        start = secret[:length]
        if start not in masked:
            continue
        for marker in _CUT_MARKERS:
            masked = masked.replace(start + marker, MASK + marker)
    return masked


def loggable(text: str, limit: int = _LOG_LIMIT) -> str:
    """``text`` for a log line: unprintable characters and backslashes escaped."""
    shown = "".join(
        ch if ch.isprintable() and ch != "\\" else ascii(ch)[1:-1]
        for ch in text[:limit]
    )
    return shown + "..." if len(text) > limit else shown
