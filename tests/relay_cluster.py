"""A real relay deployment for the tests: a test CA and server certificate (openssl), three
``nats-server`` processes clustered on loopback with JetStream (TLS on the client port,
users with permissions: the relay's and one per test kassa), ``kassa-relay`` instances as
processes, and the appliance daemon on the simulator.

The cluster and the PKI are session-scoped (imported into ``tests/conftest.py``) and
shared by every ``tests/test_relay_*.py``; a test that kills a node brings it back through
:meth:`NatsCluster.ensure_all_up`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kassa_relay.nats_users import kassa_user, relay_user, users_block

RELAY_PASSWORD = "relay-password-0123456789"
TENANTS = {"shop-a": ["k1"], "shop-b": ["k1"], "fuzz": ["k1"]}
"""Tenants and kassas that have NATS users in the cluster's configuration."""
START_TIMEOUT = 30.0


def kassa_password(tenant: str, kassa: str) -> str:
    return f"pw-{tenant}-{kassa}-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=kassa test CA",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    )
    (directory / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    )
    return Pki(directory / "ca.pem", directory / "server.pem", directory / "server.key")


@dataclass
class NatsCluster:
    directory: Path
    pki: Pki
    client_ports: list[int]
    route_ports: list[int]
    processes: list[subprocess.Popen[bytes] | None] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [f"tls://127.0.0.1:{port}" for port in self.client_ports]

    def config(self, index: int) -> str:
        users = [relay_user("relay", RELAY_PASSWORD)] + [
            kassa_user(tenant, kassa, kassa_password(tenant, kassa))
            for tenant, kassas in TENANTS.items()
            for kassa in kassas
        ]
        routes = ", ".join(f"nats-route://127.0.0.1:{port}" for port in self.route_ports)
        store = self.directory / f"n{index}" / "jetstream"
        return (
            f"server_name: n{index}\n"
            f"listen: 127.0.0.1:{self.client_ports[index]}\n"
            f'tls {{ cert_file: "{self.pki.cert}", key_file: "{self.pki.key}", timeout: 5 }}\n'
            f'jetstream {{ store_dir: "{store}", max_memory_store: 64MB, max_file_store: 1GB }}\n'
            f"cluster {{ name: kassa-test, listen: 127.0.0.1:{self.route_ports[index]},"
            f" routes: [{routes}] }}\n" + users_block(users)
        )

    def start(self, index: int) -> None:
        config = self.directory / f"n{index}.conf"
        config.write_text(self.config(index))
        log = open(self.directory / f"n{index}.log", "ab")  # noqa: SIM115 - kept by the child
        process = subprocess.Popen(
            ["nats-server", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        self.processes[index] = process

    def kill(self, index: int) -> None:
        process = self.processes[index]
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
        self.processes[index] = None

    def ensure_all_up(self) -> None:
        for index, process in enumerate(self.processes):
            if process is None or process.poll() is not None:
                self.start(index)
        self.wait_ready()

    def wait_ready(self) -> None:
        """Also callable from an async test: the wait runs on its own loop in a thread."""
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, _wait_jetstream(self)).result()

    def stop(self) -> None:
        for index in range(len(self.processes)):
            process = self.processes[index]
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self.processes[index] = None


async def _wait_jetstream(cluster: NatsCluster) -> None:
    import nats

    deadline = time.monotonic() + START_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            nc = await nats.connect(
                servers=cluster.urls,
                user="relay",
                password=RELAY_PASSWORD,
                tls=cluster.pki.client_context(),
                connect_timeout=2,
                max_reconnect_attempts=1,
            )
            try:
                js = nc.jetstream(timeout=3)
                await js.account_info()
                from nats.js.api import StreamConfig

                with contextlib.suppress(Exception):
                    await js.add_stream(
                        StreamConfig(name="READY", subjects=["ready.>"], num_replicas=3, max_msgs=1)
                    )
                await js.publish("ready.x", b"1", timeout=3)
                return
            finally:
                await nc.close()
        except Exception as error:
            last = error
            await asyncio.sleep(0.3)
    raise AssertionError(f"the NATS cluster never became ready: {last!r}")


@pytest.fixture(scope="session")
def relay_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("relay-pki"))


@pytest.fixture(scope="session")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory, relay_pki: Pki) -> Iterator[NatsCluster]:
    directory = tmp_path_factory.mktemp("nats-cluster")
    cluster = NatsCluster(
        directory,
        relay_pki,
        [free_port() for _ in range(3)],
        [free_port() for _ in range(3)],
        [None, None, None],
    )
    for index in range(3):
        cluster.start(index)
    try:
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.stop()


# -- kassa-relay as a process -----------------------------------------------------------------


def relay_cli(
    cluster: NatsCluster, *args: str, password_file: Path
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "kassa_relay", "--log-level", "warning", *args]
    bus = [
        "--nats-user",
        "relay",
        "--nats-password-file",
        str(password_file),
        "--nats-ca",
        str(cluster.pki.ca),
    ]
    for url in cluster.urls:
        bus += ["--nats", url]
    # the bus options belong to the sub-command: insert them after its positional words
    return subprocess.run(command + bus, capture_output=True, text=True, timeout=60, check=False)


@dataclass
class RelayProcess:
    cluster: NatsCluster
    port: int
    password_file: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    extra: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "kassa_relay",
            "--log-level",
            "warning",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--tls-cert",
            str(self.cluster.pki.cert),
            "--tls-key",
            str(self.cluster.pki.key),
            "--nats-user",
            "relay",
            "--nats-password-file",
            str(self.password_file),
            "--nats-ca",
            str(self.cluster.pki.ca),
            "--allow-private-callbacks",
            *self.extra,
        ]
        for url in self.cluster.urls:
            command += ["--nats", url]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self.wait_healthy()

    def wait_healthy(self) -> None:
        import httpx

        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(self.url + "/healthz", verify=self.cluster.pki.client_context())
                if answer.status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError("kassa-relay never became healthy: " + self.log.read_text()[-2000:])

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def start_relays(
    cluster: NatsCluster, directory: Path, count: int, *extra: str
) -> list[RelayProcess]:
    password_file = directory / "relay-nats-password"
    password_file.write_text(RELAY_PASSWORD)
    relays = [
        RelayProcess(cluster, free_port(), password_file, directory / f"relay{i}.log", extra=extra)
        for i in range(count)
    ]
    for relay in relays:
        relay.start()
    return relays


def register(
    cluster: NatsCluster,
    directory: Path,
    tenant: str,
    kassa: str,
    *options: str,
    atol_login: str | None = None,
) -> str:
    """Tenant + cashbox through the CLI; returns the cashbox secret."""
    password_file = directory / "relay-nats-password"
    password_file.write_text(RELAY_PASSWORD)
    tenant_args = ["tenant", "add", tenant, "--name", f"Shop {tenant}"]
    if atol_login:
        atol_file = directory / f"atol-{tenant}"
        atol_file.write_text(f"{atol_login}-password")
        tenant_args += ["--atol-login", atol_login, "--atol-password-file", str(atol_file)]
    done = relay_cli(cluster, *tenant_args, password_file=password_file)
    assert done.returncode == 0, done.stderr
    secret_file = directory / f"secret-{tenant}-{kassa}"
    done = relay_cli(
        cluster,
        "cashbox",
        "register",
        tenant,
        kassa,
        "--secret-out",
        str(secret_file),
        "--ack-wait",
        "4",
        *options,
        password_file=password_file,
    )
    assert done.returncode == 0, done.stderr
    calls = json.loads(done.stdout)
    assert calls["sale.cashbox.handler.add"]["SUPPORTS_FFD105"] == "Y"
    return secret_file.read_text().strip()


# -- the appliance daemon ---------------------------------------------------------------------


class RelayDaemon:
    """The real appliance process on the simulator, relay channel on."""

    def __init__(self, data_dir: Path, cluster: NatsCluster, tenant: str, kassa: str) -> None:
        from kassa_appliance.appliance.config import (
            Config,
            KassaConfig,
            RegisterConfig,
            save_config,
        )
        from kassa_appliance.channels.relay.settings import RelayConfig

        self.data_dir = data_dir
        config = Config(
            kassa=KassaConfig(id=kassa),
            register=RegisterConfig(driver="simulator"),
            relay=RelayConfig(
                enabled=True,
                servers=tuple(cluster.urls),
                tenant=tenant,
                password=kassa_password(tenant, kassa),
                ca_file=str(cluster.pki.ca),
            ),
        )
        save_config(data_dir, config)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from kassa_appliance.appliance.daemon import daemon_command

        log = open(self.data_dir / "daemon.log", "ab")  # noqa: SIM115 - kept by the child
        self.process = subprocess.Popen(
            daemon_command(self.data_dir, "warning"),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def terminate(self) -> int:
        assert self.process is not None
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)
