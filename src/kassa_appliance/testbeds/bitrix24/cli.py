"""``kassa-appliance emulator`` (a loopback Bitrix24 portal) and ``kassa-appliance send-job``
(the producer: store a KASSAJOB item and ring the doorbell, as the Bitrix24 app would)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx

from kassa_appliance.bitrix.auth import OAuthAuth, OAuthCredentials, TokenFile
from kassa_appliance.bitrix.errors import BitrixError
from kassa_appliance.bitrix.jobs import publish_job
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.files import write_private_file
from kassa_appliance.testbeds.bitrix24.limits import PROFILES
from kassa_appliance.testbeds.bitrix24.state import CASHIER_USER_ID

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def register_cli(subparsers: Any) -> None:
    emulator = subparsers.add_parser(
        "emulator", help="run a loopback Bitrix24 portal emulator (REST, OAuth, Push&Pull)"
    )
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=0, help="REST/OAuth port (0: any free)")
    emulator.add_argument("--push-port", type=int, default=0, help="push WebSocket port")
    emulator.add_argument("--state-file", type=Path, help="keep portal state across restarts")
    emulator.add_argument(
        "--credentials-out",
        type=Path,
        help="write the daemon's pairing (portal, client id/secret, refresh token) here",
    )
    emulator.add_argument("--access-ttl", type=float, default=None, help="access token TTL, s")
    emulator.add_argument(
        "--push-buffer-delay", type=float, default=None, help="push frame buffering delay, s"
    )
    emulator.add_argument("--no-push", action="store_true", help="REST only")
    emulator.add_argument(
        "--limits",
        choices=sorted(PROFILES),
        default=None,
        help="REST limit profile: standard (2/s, burst 50), enterprise (5/s, burst 250) or "
        "test (burst 50, fast drain); default $KASSA_EMULATOR_LIMITS, else standard",
    )
    emulator.set_defaults(handler=run_emulator_command)

    send = subparsers.add_parser("send-job", help="store a KASSAJOB item and ring the doorbell")
    send.add_argument("file", help="Atol JSON task file, or - for stdin")
    send.add_argument("--kassa", required=True, help="target kassa id")
    send.add_argument("--portal", help="emulator URL: mint a cashier pairing from it")
    send.add_argument("--credentials", type=Path, help="pairing JSON file of the producer")
    send.add_argument("--job-id", help="job id (default: a new UUID)")
    send.add_argument("--source", default="cli")
    send.add_argument("--no-ring", action="store_true", help="store the job without a doorbell")
    send.set_defaults(handler=send_job_command)


# -- emulator ----------------------------------------------------------------------------


def run_emulator_command(args: argparse.Namespace) -> int:
    try:
        asyncio.run(_serve_emulator(args))
    except KeyboardInterrupt:
        pass
    return EXIT_OK


async def _start_push(args: argparse.Namespace) -> Any:
    from kassa_appliance.testbeds.bitrix24.push import PushServer, PushSettings

    settings = PushSettings()
    if args.push_buffer_delay is not None:
        settings = PushSettings(buffer_delay=(args.push_buffer_delay, args.push_buffer_delay))
    push = PushServer(settings)
    await push.start(args.host, args.push_port)
    return push


async def _serve_emulator(args: argparse.Namespace) -> None:
    push = None if args.no_push else await _start_push(args)
    from kassa_appliance.testbeds.bitrix24.app import (
        Emulator,  # lazily: the daemon's CLI never loads the emulator
    )

    emulator = Emulator(
        state_file=args.state_file,
        access_ttl=args.access_ttl,
        push=push,
        host=args.host,
        limits=args.limits,
    )
    await emulator.start(args.port)
    pairing = emulator.credentials()
    info = {**pairing, "push": None if push is None else push.websocket_url}
    if args.credentials_out is not None:
        write_private_file(args.credentials_out, json.dumps(info, indent=2) + "\n")
        print(json.dumps({"portal": emulator.url, "credentials": str(args.credentials_out)}))
    else:
        print(json.dumps(info))
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await emulator.stop()
        if push is not None:
            await push.stop()


# -- producer ----------------------------------------------------------------------------


def send_job_command(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
    except OSError as error:
        print(f"send-job: cannot read {args.file}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    try:
        task = json.loads(text)
    except ValueError as error:
        print(f"send-job: {args.file} is not JSON: {error}", file=sys.stderr)
        return EXIT_USAGE
    if (args.portal is None) == (args.credentials is None):
        print("send-job: give exactly one of --portal (emulator) or --credentials", file=sys.stderr)
        return EXIT_USAGE
    job_id = args.job_id or str(uuid.uuid4())
    try:
        asyncio.run(_send(args, job_id, task))
    except (BitrixError, httpx.HTTPError, ValueError, OSError) as error:
        print(f"send-job: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(job_id)
    return EXIT_OK


async def _producer_pairing(args: argparse.Namespace) -> dict[str, Any]:
    if args.credentials is not None:
        pairing = json.loads(args.credentials.read_text("utf-8"))
    else:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.post(
                args.portal.rstrip("/") + "/_emulator/pairing", json={"user_id": CASHIER_USER_ID}
            )
            answer.raise_for_status()
            pairing = answer.json()
    if not isinstance(pairing, dict):
        raise ValueError("pairing must be a JSON object with portal, client_id, client_secret")
    return pairing


async def _send(args: argparse.Namespace, job_id: str, task: Any) -> None:
    pairing = await _producer_pairing(args)
    if args.credentials is not None:  # keep the rotated producer tokens next to the pairing
        await _publish(args, job_id, task, pairing, args.credentials.with_suffix(".tokens.json"))
        return
    with tempfile.TemporaryDirectory(prefix="kassa-send-job-") as scratch:
        await _publish(args, job_id, task, pairing, Path(scratch) / "tokens.json")


async def _publish(
    args: argparse.Namespace, job_id: str, task: Any, pairing: dict[str, Any], token_path: Path
) -> None:
    credentials = OAuthCredentials(
        portal=pairing["portal"],
        client_id=pairing["client_id"],
        client_secret=pairing["client_secret"],
        refresh_token=pairing.get("refresh_token"),
        token_url=pairing.get("token_url") or "https://oauth.bitrix.info/oauth/token/",
    )
    async with RestClient(OAuthAuth(credentials, TokenFile(token_path))) as rest:
        await publish_job(
            rest,
            job_id=job_id,
            kassa=args.kassa,
            task=task,
            source=args.source,
            ring=not args.no_ring,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kassa-emulator")
    sub = parser.add_subparsers(dest="command", required=True)
    register_cli(sub)
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
