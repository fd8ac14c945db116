"""``python3 -m kassa_appliance.appliance.hooks <install|configure|post-refresh>``: what hooks/ run.

Errors go to stderr and exit non-zero: snapd shows the text to the user and, for
``configure``, discards the ``snap set`` values.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from kassa_appliance.appliance.config import default_data_dir
from kassa_appliance.appliance.hooks.configure import configure
from kassa_appliance.appliance.hooks.install import seed_defaults
from kassa_appliance.appliance.hooks.post_refresh import MigrationError, post_refresh
from kassa_appliance.appliance.hooks.settings import InvalidSettings
from kassa_appliance.appliance.hooks.snapctl import Snapctl, SnapctlError

DAEMON_APP = "daemon"


def daemon_service() -> str:
    return f"{os.environ.get('SNAP_INSTANCE_NAME') or 'kassa-appliance'}.{DAEMON_APP}"


def _run_install(data_dir: Path) -> None:
    seed_defaults(Snapctl())


def _run_configure(data_dir: Path) -> None:
    outcome = configure(Snapctl(), data_dir, service=daemon_service())
    for line in outcome.notes:
        print(line)


HOOKS: dict[str, Callable[[Path], None]] = {
    "install": _run_install,
    "configure": _run_configure,
    "post-refresh": post_refresh,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in HOOKS:
        print(
            f"usage: python3 -m kassa_appliance.appliance.hooks {{{'|'.join(HOOKS)}}}",
            file=sys.stderr,
        )
        return 2
    try:
        HOOKS[args[0]](default_data_dir())
    except InvalidSettings as error:
        for line in error.messages:
            print(line, file=sys.stderr)
        return 1
    except (SnapctlError, MigrationError, OSError) as error:
        print(f"{args[0]} hook: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
