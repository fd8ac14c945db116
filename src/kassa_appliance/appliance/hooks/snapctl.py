"""A small client of ``snapctl``, the command snapd gives hooks and apps.

Only what the hooks use: ``get -d``, ``set``, ``unset``, ``restart``, ``set-health``. Error messages
name the subcommand, never its arguments, because ``set`` arguments can carry secrets.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from kassa_appliance.inputs import InputRejected, decode_json_text

HealthStatus = Literal["okay", "waiting", "blocked", "error"]


class SnapctlError(Exception):
    """snapctl is missing, failed, or printed something we cannot read."""


class Snapctl:
    def __init__(self, executable: str = "snapctl") -> None:
        self._executable = executable

    def _run(self, *args: str) -> str:
        try:
            done = subprocess.run(
                [self._executable, *args], capture_output=True, text=True, check=False
            )
        except OSError as error:
            raise SnapctlError(f"cannot run {self._executable}: {error.strerror}") from None
        if done.returncode != 0:
            detail = done.stderr.strip() or f"exit status {done.returncode}"
            raise SnapctlError(f"snapctl {args[0]} failed: {detail}")
        return done.stdout

    def get_document(self, keys: Sequence[str]) -> dict[str, Any]:
        """``snapctl get -d KEY…``: a JSON object holding only the keys that are set."""
        output = self._run("get", "-d", *keys)
        try:
            # Within the input limits: a 5,000-digit number or a lone surrogate that
            # `snap set` stored is refused with a message, not a traceback.
            document = decode_json_text(output, "snap settings")
        except InputRejected as error:
            raise SnapctlError(f"snapctl get -d: {error}") from None
        if not isinstance(document, dict):
            raise SnapctlError("snapctl get -d did not print a JSON object")
        return document

    def set(self, values: Mapping[str, object]) -> None:
        """``snapctl set key=<json>…``: values are sent as JSON so types survive."""
        if values:
            self._run("set", *(f"{key}={json.dumps(value)}" for key, value in values.items()))

    def unset(self, keys: Sequence[str]) -> None:
        """``snapctl unset key…``."""
        if keys:
            self._run("unset", *keys)

    def restart(self, service: str) -> None:
        self._run("restart", service)

    def set_health(
        self, status: HealthStatus, message: str | None = None, code: str | None = None
    ) -> None:
        """``snapctl set-health``; snapd wants a 7-70 character message for non-okay states."""
        args = ["set-health", status]
        if message is not None:
            args.append(message)
        if code is not None:
            args.append(f"--code={code}")
        self._run(*args)
