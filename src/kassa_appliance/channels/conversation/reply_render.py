"""What the chat bots' reply senders send: the conversation engine's rendering of an outcome.

Both bots (``b24chat``, ``maxchat``) turn an :class:`Outcome` into text, an optional QR
PNG and an optional FNS check link with :func:`render.render_outcome`; each sender takes
another renderer in tests. The real one is loaded on first use (:func:`default_render`):
``render.py`` pulls in ``qrcode``, which importing a sender must not.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol

from kassa_appliance.channels.delivery.protocol import Outcome


class Rendered(Protocol):
    text: str
    png: bytes | None
    check_url: str | None


Render = Callable[[Outcome], Rendered]


def default_render() -> Render:
    """The conversation engine's ``render_outcome`` (channels/conversation/render.py)."""
    module = importlib.import_module("kassa_appliance.channels.conversation.render")
    render: Render = module.render_outcome
    return render
