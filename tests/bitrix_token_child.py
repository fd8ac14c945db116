"""Child process for test_bitrix_token_crash: one REST call with the real OAuth client.

Usage: bitrix_token_child.py PAIRING.json TOKENS.json [--pause-after-persist]

With ``--pause-after-persist`` it prints ``PERSISTED`` right after a rotated token pair is
on disk (before the new access token is used) and then hangs, waiting for SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from kassa_appliance.bitrix.auth import OAuthAuth, OAuthCredentials, TokenFile
from kassa_appliance.bitrix.rest import RestClient


async def main(pairing_path: Path, token_path: Path, pause: bool) -> None:
    pairing = json.loads(pairing_path.read_text())
    credentials = OAuthCredentials(
        pairing["portal"],
        pairing["client_id"],
        pairing["client_secret"],
        pairing["refresh_token"],
        pairing["token_url"],
    )

    async def hang() -> None:
        print("PERSISTED", flush=True)
        await asyncio.sleep(3600)

    auth = OAuthAuth(credentials, TokenFile(token_path), after_persist=hang if pause else None)
    async with RestClient(auth) as rest:
        profile = await rest.result("profile")
    print(f"OK {profile['ID']}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), "--pause-after-persist" in sys.argv))
