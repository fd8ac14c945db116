"""What can go wrong talking to MAX, in the integrator's words (never the token)."""

from __future__ import annotations

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class MaxApiError(Exception):
    """MAX answered with an error (``{"code", "message"}``), or did not answer at all
    (``status`` 0: a network failure, a dropped connection, a timeout)."""

    def __init__(self, status: int, code: str, message: str, *, ambiguous: bool = False) -> None:
        super().__init__(f"MAX Bot API: {status or 'no answer'} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.ambiguous = ambiguous
        """The request may have reached MAX (no answer after it was sent)."""

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status in RETRYABLE_STATUSES

    @property
    def token_rejected(self) -> bool:
        return self.status == 401 or self.code in ("verify.token", "deprecated.token")

    @property
    def chat_gone(self) -> bool:
        """For good: the user blocked (stopped) the bot, the chat was deleted, no access."""
        return self.status in (403, 404) and not self.token_rejected

    @property
    def not_ready(self) -> bool:
        return self.code == "attachment.not.ready"
