"""A logging filter that masks credential values wherever a log record would carry them.

Credentials only travel in request headers, and nothing here logs headers; the filter is
the second line of defence for what we do not control (a library that logs a request, a
traceback that prints a local variable). It rewrites the formatted message and drops the
arguments, so a handler that formats again cannot bring the secret back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

MASK = "**********"
# Short values would mask ordinary words; real Autotask and SentinelOne secrets
# are long.
_MIN_SECRET_LENGTH = 6


class SecretRedactionFilter(logging.Filter):
    """Replace every known secret value in a record's message and traceback text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Start masking more values, also as a repr or JSON string would spell them."""
        for secret in secrets:
            if len(secret) < _MIN_SECRET_LENGTH:
                continue
            self._secrets.update({secret, repr(secret)[1:-1], json.dumps(secret)[1:-1]})

    def mask(self, text: str) -> str:
        """Return ``text`` with every known secret replaced."""
        # Longest first, so a secret's escaped spelling is not left half masked.
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        return True


_FILTER = SecretRedactionFilter()


def install_redaction(secrets: Iterable[str]) -> SecretRedactionFilter:
    """Mask ``secrets`` on the main loggers and on every handler configured so far.

    A logger's own filter only sees records logged on that logger, not those its
    children pass up, so the filter goes on the handlers too: Prefect's run loggers
    have one of their own that ships records to the Prefect API, where the UI and
    its database would keep an unmasked secret.
    """
    _FILTER.add(secrets)
    for name in ("", "prefect", "s1_autotask", "httpx", "uvicorn"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for handler in _all_handlers():
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    return _FILTER


def _all_handlers() -> list[logging.Handler]:
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [
        logger
        for logger in list(logging.Logger.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    return [handler for logger in loggers for handler in logger.handlers]
