"""Entry point: `python -m kassa_appliance` and the `kassa-appliance` console script."""

from __future__ import annotations

import sys

from kassa_appliance.cli import main

if __name__ == "__main__":
    sys.exit(main())
