"""``kassa-relay``: serve the relay, register tenants and cashboxes, print NATS users.

Every option has a named default (:mod:`kassa_relay.defaults`). Secrets are read from files
or the environment, never from the command line (it shows in ``ps``)::

    kassa-relay serve --nats tls://nats1:4222 --nats tls://nats2:4222 --nats-ca ca.pem \\
        --nats-user relay --nats-password-file /etc/kassa-relay/nats-password \\
        --tls-cert cert.pem --tls-key key.pem
    kassa-relay tenant add shop-1 --name "Shop" --atol-login shop1 --atol-password-file pw
    kassa-relay cashbox register shop-1 kassa-1 --vat 1=none --vat 2=0 --vat 3=20 \\
        --public-url https://relay.example.ru [--webhook https://portal/rest/1/xyz/]
    kassa-relay nats-user shop-1 kassa-1 --password-file kassa-pw
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from kassa_relay import b24_register, defaults, nats_users
from kassa_relay.bus import Bus, BusOptions
from kassa_relay.registry import (
    Cashbox,
    RegistryError,
    Tenant,
    cashbox_key,
    check_kassa_id,
    check_tenant_id,
    login_key,
    new_secret,
    new_uuid_key,
    password_hash,
    secret_digest,
    tenant_key,
)

PASSWORD_ENV = "KASSA_RELAY_NATS_PASSWORD"


def _secret_file(path: str | None, env: str | None = None) -> str | None:
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return os.environ.get(env) if env else None


def _bus_options(args: argparse.Namespace) -> BusOptions:
    return BusOptions(
        servers=tuple(args.nats or [defaults.DEFAULT_NATS_URL]),
        user=args.nats_user,
        password=_secret_file(args.nats_password_file, PASSWORD_ENV),
        ca_file=args.nats_ca,
        replicas=args.replicas,
    )


def _add_bus_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nats",
        action="append",
        metavar="URL",
        help=f"a NATS server (repeat for each; default {defaults.DEFAULT_NATS_URL})",
    )
    parser.add_argument("--nats-user", default=None)
    parser.add_argument(
        "--nats-password-file",
        default=None,
        help=f"file holding the NATS password (or ${PASSWORD_ENV})",
    )
    parser.add_argument("--nats-ca", default=None, help="CA file that signed the NATS servers")
    parser.add_argument(
        "--replicas",
        type=int,
        default=defaults.DEFAULT_REPLICAS,
        help=f"stream and bucket replicas (default {defaults.DEFAULT_REPLICAS})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kassa-relay", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run one relay instance")
    _add_bus_arguments(serve)
    serve.add_argument("--host", default=defaults.DEFAULT_LISTEN_HOST)
    serve.add_argument("--port", type=int, default=defaults.DEFAULT_PORT)
    serve.add_argument("--tls-cert", default=None)
    serve.add_argument("--tls-key", default=None)
    serve.add_argument(
        "--behind-tls-proxy",
        action="store_true",
        help="plain HTTP for a TLS-terminating proxy on this host (docs/relay.md)",
    )
    serve.add_argument(
        "--rate",
        type=float,
        default=defaults.DEFAULT_RATE_PER_SECOND,
        help="requests per second per tenant, fleet-wide (docs/relay.md: Rate limits)",
    )
    serve.add_argument("--burst", type=int, default=defaults.DEFAULT_RATE_BURST)
    serve.add_argument("--max-body", type=int, default=defaults.DEFAULT_MAX_BODY_BYTES)
    serve.add_argument(
        "--allow-private-callbacks",
        action="store_true",
        help="let ATOL Online callback URLs be http:// or loopback (tests only)",
    )

    tenant = commands.add_parser("tenant", help="tenants").add_subparsers(
        dest="action", required=True
    )
    add = tenant.add_parser("add", help="add or update a tenant")
    _add_bus_arguments(add)
    add.add_argument("tenant")
    add.add_argument("--name", required=True)
    add.add_argument("--atol-login", default=None)
    add.add_argument("--atol-password-file", default=None)
    add.add_argument("--rate", type=float, default=None)

    cashbox = commands.add_parser("cashbox", help="cashboxes").add_subparsers(
        dest="action", required=True
    )
    register = cashbox.add_parser("register", help="register a kassa of a tenant")
    _add_bus_arguments(register)
    register.add_argument("tenant")
    register.add_argument("kassa")
    register.add_argument(
        "--vat",
        action="append",
        default=[],
        metavar="ID=RATE",
        help="a Bitrix24 catalog VAT id and its rate (20, 10, 0, none)",
    )
    register.add_argument("--ffd", choices=["1.05", "1.2"], default="1.2")
    register.add_argument("--taxation", default=None)
    register.add_argument("--payments-address", default=None)
    register.add_argument("--secret-out", default=None, help="write the new secret here (0600)")
    register.add_argument("--public-url", default=None, help="the relay's public https URL")
    register.add_argument(
        "--webhook",
        default=None,
        help="a portal admin's webhook: read catalog.vat.list, add the handler and the cashbox",
    )
    register.add_argument("--email", default="admin@example.ru")
    register.add_argument(
        "--ack-wait",
        type=float,
        default=defaults.DEFAULT_ACK_WAIT_SECONDS,
        help="seconds before a check a kassa took but did not ack is delivered again",
    )

    user = commands.add_parser("nats-user", help="print a kassa's NATS user entry")
    user.add_argument("tenant")
    user.add_argument("kassa")
    user.add_argument("--password-file", required=True)
    return parser


async def _with_bus(args: argparse.Namespace, work: Any) -> Any:
    bus = Bus(_bus_options(args))
    await bus.start()
    try:
        return await work(bus)
    finally:
        await bus.close()


async def cmd_serve(args: argparse.Namespace) -> int:
    from kassa_relay.service import Limits, Relay
    from kassa_relay.web import serve, server_tls

    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("kassa-relay: give both --tls-cert and --tls-key")
    if not args.tls_cert and not args.behind_tls_proxy:
        raise SystemExit("kassa-relay: give --tls-cert/--tls-key, or --behind-tls-proxy")
    tls = server_tls(args.tls_cert, args.tls_key) if args.tls_cert else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bus = Bus(_bus_options(args))
    await bus.start()
    limits = Limits(max_body_bytes=args.max_body, rate=args.rate, burst=args.burst)
    relay = Relay(bus, limits, allow_private_callbacks=args.allow_private_callbacks)
    await relay.fleet_limiter().prepare()
    try:
        await serve(relay, args.host, args.port, tls, stop)
    finally:
        await bus.close()
    return 0


async def cmd_tenant_add(args: argparse.Namespace) -> int:
    tenant_id = check_tenant_id(args.tenant)
    password = _secret_file(args.atol_password_file)
    if bool(args.atol_login) != bool(password):
        raise RegistryError("give both --atol-login and --atol-password-file, or neither")
    tenant = Tenant(
        id=tenant_id,
        name=args.name,
        atol_login=args.atol_login,
        atol_password_hash=password_hash(password) if password else None,
        rate_per_second=args.rate,
    )

    async def work(bus: Bus) -> None:
        await bus.registry_put(tenant_key(tenant_id), tenant.to_json())
        if args.atol_login:
            await bus.registry_put(login_key(args.atol_login), {"tenant": tenant_id})

    await _with_bus(args, work)
    print(f"tenant {tenant_id} saved")
    return 0


def _vat_arguments(values: list[str]) -> dict[str, str]:
    vat: dict[str, str] = {}
    for value in values:
        vat_id, sep, rate = value.partition("=")
        if not sep or not vat_id.isdigit():
            raise RegistryError(f"--vat {value!r}: expected ID=RATE, e.g. 3=20")
        vat[vat_id] = rate
    return vat


async def cmd_cashbox_register(args: argparse.Namespace) -> int:
    tenant_id, kassa = check_tenant_id(args.tenant), check_kassa_id(args.kassa)
    vat = _vat_arguments(args.vat)
    if args.webhook:
        result = b24_register.call(args.webhook, "catalog.vat.list", {"select": ["id", "rate"]})
        vat = {**b24_register.vat_map(result.get("vats", [])), **vat}
    secret = new_secret()
    cashbox = Cashbox(
        tenant=tenant_id,
        kassa=kassa,
        secret_digest=secret_digest(secret),
        uuid_key=new_uuid_key(),
        vat=vat,
        ffd=args.ffd,
        taxation=args.taxation,
        payments_address=args.payments_address,
    )

    async def work(bus: Bus) -> None:
        tenant = await bus.registry_get(tenant_key(tenant_id))
        if tenant is None:
            raise RegistryError(f"tenant {tenant_id} is not registered; run `tenant add` first")
        existing = await bus.registry_get(cashbox_key(tenant_id, kassa))
        stored = cashbox.to_json()
        if existing:  # keep the UUID key: UUIDs handed out before stay valid
            stored["uuid_key"] = existing["uuid_key"]
        await bus.registry_put(cashbox_key(tenant_id, kassa), stored)
        await bus.ensure_consumer(tenant_id, kassa, args.ack_wait)

    await _with_bus(args, work)
    if args.secret_out:
        from kassa_appliance.files import write_private_file

        write_private_file(Path(args.secret_out), secret + "\n")
    calls = {
        "sale.cashbox.handler.add": b24_register.handler_params(
            args.public_url or "https://relay.example.ru", tenant_id
        ),
        "sale.cashbox.add": b24_register.cashbox_params(
            kassa, "<the secret>" if args.secret_out else secret, args.email
        ),
    }
    if args.webhook:
        if not args.public_url:
            raise RegistryError("--webhook needs --public-url (the PRINT_URL host)")
        try:
            b24_register.call(
                args.webhook, "sale.cashbox.handler.add", calls["sale.cashbox.handler.add"]
            )
        except RuntimeError as error:
            if "ERROR_HANDLER_ALREADY_EXIST" not in str(error):
                raise
        calls["sale.cashbox.add"]["SETTINGS"]["RELAY"]["SECRET"] = secret
        b24_register.call(args.webhook, "sale.cashbox.add", calls["sale.cashbox.add"])
        print(f"cashbox {tenant_id}/{kassa} registered on the relay and on the portal")
    else:
        print(json.dumps(calls, ensure_ascii=False, indent=2))
    return 0


def cmd_nats_user(args: argparse.Namespace) -> int:
    tenant_id, kassa = check_tenant_id(args.tenant), check_kassa_id(args.kassa)
    password = _secret_file(args.password_file) or ""
    print(json.dumps(nats_users.kassa_user(tenant_id, kassa, password), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        if args.command == "serve":
            return asyncio.run(cmd_serve(args))
        if args.command == "tenant":
            return asyncio.run(cmd_tenant_add(args))
        if args.command == "cashbox":
            return asyncio.run(cmd_cashbox_register(args))
        return cmd_nats_user(args)
    except RegistryError as error:
        print(f"kassa-relay: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"kassa-relay: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
