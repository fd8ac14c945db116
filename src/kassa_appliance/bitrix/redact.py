"""Keep tokens, secrets and webhook codes out of log records.

httpx logs every request URL at INFO. The OAuth token endpoint takes ``client_secret`` and
``refresh_token`` in the query string (as Bitrix documents it) and an inbound webhook URL
embeds its secret code in the path, so :func:`install_redaction` puts a filter on the
``httpx`` logger that masks them before any handler sees the record.
"""

from __future__ import annotations

import logging
import re

_QUERY_SECRET = re.compile(
    r"(?i)\b(auth|access_token|refresh_token|client_secret|code|token)=([^&\s\"'<>]+)"
)
_WEBHOOK_PATH = re.compile(r"(/rest/\d+/)([^/\s\"'?]+)(/)")
_JSON_SECRET = re.compile(
    r"(?i)([\"'](?:auth|access_token|refresh_token|client_secret)[\"']\s*:\s*[\"'])([^\"']+)"
)

MASK = "***"


def redact(text: str) -> str:
    """Mask secret query parameters, JSON fields and webhook codes in ``text``."""
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}={MASK}", text)
    text = _WEBHOOK_PATH.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)
    return _JSON_SECRET.sub(lambda m: f"{m.group(1)}{MASK}", text)


class RedactSecretsFilter(logging.Filter):
    """Rewrites each record's message with :func:`redact` applied."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = ()
        return True


def install_redaction(
    logger_names: tuple[str, ...] = ("httpx", "httpcore", "httpcore.http11", "httpcore.connection"),
) -> None:
    """Attach one :class:`RedactSecretsFilter` to each named logger (idempotent)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecretsFilter) for f in logger.filters):
            logger.addFilter(RedactSecretsFilter())
