"""The source tree shows the architecture: imports point one way (docs/architecture.md).

Read from the source with :mod:`ast`, never by importing it:

* ``fiscal`` (the exactly-once core) imports nothing of ours but ``registers.base`` and the
  shared top-level helpers;
* ``registers`` imports nothing above itself (only itself and the shared helpers);
* ``bitrix`` and ``channels`` never import ``appliance``; a channel uses another channel
  only through ``channels.delivery.protocol`` (and the chat bots the ``conversation`` engine);
* nothing in the product imports ``testbeds``, except the CLI, inside a function (lazily);
* ``kassa_relay`` (the cloud relay service, a second package beside ``kassa_appliance``)
  imports of ``kassa_appliance`` only modules that import nothing of ours — the shared
  helpers, ``channels.relay.wire`` and ``bitrix.phpquery`` — never ``appliance``, ``cli`` or
  ``testbeds``; nothing in ``kassa_appliance`` imports ``kassa_relay``;
* no module of either package is over :data:`MAX_MODULE_LINES` lines.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "kassa_appliance"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE
RELAY_PACKAGE = "kassa_relay"
RELAY_SOURCE = SOURCE.parent / RELAY_PACKAGE

SHARED_HELPERS = frozenset(
    {"aio", "inputs", "fiscal_qr", "files", "setting_checks", "sqlite_files"}
)
"""Small top-level modules any part may use; they import nothing of ours but each other."""
SUBSYSTEMS = ("fiscal", "registers", "bitrix", "channels", "appliance", "testbeds")
MAX_MODULE_LINES = 450
CHANNEL_CONTRACT = "channels.delivery.protocol"
"""What every channel may use of another: the reply-delivery contract (Sender, Delivery…)."""
CHAT_BOTS = frozenset({"b24bot", "maxbot"})
"""Channels that are transports of the ``conversation`` engine and may import it."""
RELAY_MAY_IMPORT = frozenset({"channels.relay.wire", "bitrix.phpquery"})
"""What ``kassa_relay`` may import of ``kassa_appliance`` besides the shared helpers: the wire
contract both sides share and the PHP-style query parser for Bitrix24's form bodies. Like the
shared helpers they import nothing of ours, so the relay server loads no journal, engine,
driver, daemon or emulator code (checked below in the source and in a fresh interpreter)."""
RELAY_NEVER_IMPORTS = frozenset({"appliance", "cli", "testbeds"})


@dataclass(frozen=True)
class ImportArrow:
    source: str
    """The importing module's file, relative to the package (``fiscal/engine.py``)."""
    target: str
    """The imported module, dotted, without the package prefix (``registers.base``)."""
    line: int
    lazy: bool
    """Inside a function body, so it runs only when that function is called."""
    home: str = PACKAGE
    """The package the importing file is in (``kassa_appliance`` or ``kassa_relay``)."""
    package: str = PACKAGE
    """The package of the imported module."""

    def __str__(self) -> str:
        where = "inside a function" if self.lazy else "at module level"
        source = self.source if self.home == PACKAGE else f"{self.home}/{self.source}"
        return f"{source}:{self.line} imports {self.package}.{self.target} ({where})"


def _module_name(relative: Path) -> list[str]:
    parts = list(relative.with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def arrows_of(relative: Path, text: str, home: str = PACKAGE) -> list[ImportArrow]:
    """Every import of one of our modules in a source file of package ``home``, with where
    it stands; string constants naming our modules (``importlib.import_module`` targets)
    count as lazy. ``kassa_relay``'s imports of itself are not arrows of interest."""
    tree = ast.parse(text, filename=str(relative))
    package_parts = _module_name(relative)
    if relative.name != "__init__.py":
        package_parts = package_parts[:-1]
    found: list[ImportArrow] = []
    ours = (PACKAGE, RELAY_PACKAGE)

    def add(target: str, node: ast.AST, lazy: bool) -> None:
        for package in ours:
            if target != package and not target.startswith(package + "."):
                continue
            if package == home == RELAY_PACKAGE:
                return
            line = int(getattr(node, "lineno", 0))
            dotted = target[len(package) + 1 :]
            found.append(ImportArrow(str(relative), dotted, line, lazy, home, package))
            return

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, child, lazy)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package_parts[: len(package_parts) - (child.level - 1)]
                    module = ".".join([home, *base, *([child.module] if child.module else [])])
                else:
                    module = child.module or ""
                if module in ours:  # from kassa_appliance import config
                    for alias in child.names:
                        add(f"{module}.{alias.name}", child, lazy)
                else:
                    add(module, child, lazy)
            elif (
                isinstance(child, ast.Constant)
                and isinstance(child.value, str)
                and child.value.startswith(tuple(f"{package}." for package in ours))
                and " " not in child.value
            ):
                add(child.value, child, True)
            visit(child, inner)

    visit(tree, False)
    return found


def part_of(module: str) -> str:
    """``fiscal.engine`` → ``fiscal``; ``cli`` → ``cli``; ``aio`` → ``shared``."""
    head = module.split(".")[0]
    if head in SHARED_HELPERS:
        return "shared"
    return head


def relay_violation(arrow: ImportArrow) -> str | None:
    """Why an import of ``kassa_relay`` from ``kassa_appliance`` is not allowed, or None."""
    target = part_of(arrow.target)
    if target == "shared" or arrow.target in RELAY_MAY_IMPORT:
        return None
    allowed = ", ".join(sorted(RELAY_MAY_IMPORT))
    if target in RELAY_NEVER_IMPORTS:
        return (
            f"kassa_relay never imports {PACKAGE}.{target} (the relay is a service of its own; "
            f"of {PACKAGE} it uses only the shared helpers and {allowed})"
        )
    return (
        f"kassa_relay imports of {PACKAGE} only modules that import nothing of ours: the "
        f"shared helpers and {allowed}"
    )


def channel_of(module: str) -> str | None:
    """``channels.lan.queue`` → ``lan``; ``channels`` (the package itself) → None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "channels" and len(parts) > 1 else None


def violation(arrow: ImportArrow) -> str | None:
    """Why an import points the wrong way, or None when it is allowed."""
    if arrow.home == RELAY_PACKAGE:
        return relay_violation(arrow)
    if arrow.package == RELAY_PACKAGE:
        return (
            f"nothing in {PACKAGE} imports kassa_relay (the relay builds on "
            "channels.relay.wire, not the other way round)"
        )
    source = part_of(_dotted(arrow.source))
    target = part_of(arrow.target)
    if source == "testbeds":
        return None
    if target == "testbeds":
        if source == "cli" and arrow.lazy:
            return None
        return "only the CLI's demo/emulator commands may import testbeds, and only lazily"
    if target == "shared":
        return None
    if source == "shared":
        return "a shared helper imports nothing of ours but the other shared helpers"
    if source == "fiscal":
        if target == "fiscal" or arrow.target == "registers.base":
            return None
        return "fiscal imports nothing of ours but registers.base and the shared helpers"
    if source == "registers":
        return None if target == "registers" else "registers imports nothing above itself"
    if source in {"bitrix", "channels"} and target in {"appliance", "cli"}:
        return f"{source} never imports {target}"
    if source == "bitrix" and target == "channels":
        return "bitrix never imports channels (channels build on it)"
    if source == "channels" and target == "channels":
        mine, theirs = channel_of(_dotted(arrow.source)), channel_of(arrow.target)
        if theirs is None or mine == theirs or arrow.target == CHANNEL_CONTRACT:
            return None
        if mine in CHAT_BOTS and theirs == "conversation":
            return None
        return (
            f"channels.{mine} uses another channel only through {CHANNEL_CONTRACT} "
            "(and the chat bots the conversation engine)"
        )
    if source == "appliance" and target == "cli":
        return "appliance never imports the CLI"
    return None


def _dotted(relative: str) -> str:
    return ".".join(_module_name(Path(relative)))


def all_arrows() -> list[ImportArrow]:
    """The arrows of both packages (``kassa_relay``'s only those into ``kassa_appliance``)."""
    arrows: list[ImportArrow] = []
    for home, root in ((PACKAGE, SOURCE), (RELAY_PACKAGE, RELAY_SOURCE)):
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root)
            arrows.extend(arrows_of(relative, path.read_text(encoding="utf-8"), home))
    return arrows


def test_every_subsystem_is_a_package_with_a_docstring() -> None:
    inits = [SOURCE / name / "__init__.py" for name in SUBSYSTEMS]
    inits += [RELAY_SOURCE / "__init__.py"]
    for init in inits:
        name = init.parent.name
        assert init.is_file(), f"{name}/ has no __init__.py"
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), (
            f"{name}/__init__.py says nothing of what the part owns"
        )


def test_top_level_holds_only_the_cli_and_shared_helpers() -> None:
    modules = {path.stem for path in SOURCE.glob("*.py")}
    assert modules <= {"__init__", "__main__", "cli", *SHARED_HELPERS}, sorted(
        modules - {"__init__", "__main__", "cli", *SHARED_HELPERS}
    )


def test_imports_point_one_way() -> None:
    arrows = all_arrows()
    assert arrows, "no imports found: the checker reads nothing"
    assert any(arrow.home == RELAY_PACKAGE for arrow in arrows), "kassa_relay was not read"
    wrong = [f"{arrow}: {reason}" for arrow in arrows if (reason := violation(arrow))]
    assert not wrong, "imports pointing the wrong way:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("source", "text", "expected"),
    [
        ("fiscal/engine.py", "from kassa_appliance.bitrix.jobs import JobLink\n", "fiscal imports"),
        ("fiscal/engine.py", "from kassa_appliance.registers.factory import x\n", "fiscal imports"),
        ("registers/simulator.py", "from kassa_appliance.fiscal import journal\n", "registers"),
        ("bitrix/jobs.py", "import kassa_appliance.appliance.config\n", "bitrix never"),
        ("appliance/daemon.py", "from ..testbeds.demo import run\n", "testbeds"),
        ("cli.py", "from kassa_appliance.testbeds import demo\n", "testbeds"),
        ("channels/lan/queue.py", "from ..relay.consumer import RelayConsumer\n", "channels.lan"),
        ("channels/relay/senders.py", "from ..delivery.worker import W\n", "channels.relay"),
        ("channels/automation/plan.py", "from ..conversation import texts\n", "channels.auto"),
        ("appliance/run_relay.py", "from kassa_relay.bus import Bus\n", "nothing in"),
        ("testbeds/demo.py", "def f():\n    import kassa_relay\n", "nothing in"),
    ],
)
def test_the_checker_names_a_wrong_arrow(source: str, text: str, expected: str) -> None:
    arrows = arrows_of(Path(source), text)
    reasons = [reason for arrow in arrows if (reason := violation(arrow))]
    assert reasons and expected in reasons[0], (arrows, reasons)
    assert source in str(arrows[0])


def test_the_checker_allows_the_lazy_cli_import_and_the_register_protocol() -> None:
    lazy = arrows_of(Path("cli.py"), "def f():\n    from kassa_appliance.testbeds import demo\n")
    protocol = arrows_of(Path("fiscal/engine.py"), "from ..registers.base import Register\n")
    assert [violation(arrow) for arrow in lazy + protocol] == [None, None]
    assert protocol[0].target == "registers.base"


def test_the_checker_allows_a_channel_the_delivery_contract_and_a_bot_the_conversation() -> None:
    allowed = [
        ("channels/lan/outbox.py", "from ..delivery.protocol import Delivery\n"),
        ("channels/maxbot/transport.py", "from ..conversation.transport import Incoming\n"),
        ("channels/b24bot/sender.py", "def f():\n    from ..conversation import render\n"),
        ("channels/lan/server.py", "from .queue import LanQueue\n"),
    ]
    arrows = [arrow for source, text in allowed for arrow in arrows_of(Path(source), text)]
    assert len(arrows) == len(allowed)
    assert [violation(arrow) for arrow in arrows] == [None] * len(allowed)


@pytest.mark.parametrize(
    ("source", "text", "expected"),
    [
        ("bus.py", "from kassa_appliance.appliance.config import Config\n", "never imports"),
        ("web.py", "import kassa_appliance.cli\n", "never imports kassa_appliance.cli"),
        ("__main__.py", "def f():\n    from kassa_appliance.testbeds import x\n", "never"),
        ("service.py", "from kassa_appliance.fiscal.journal import Journal\n", "only modules"),
        ("bus.py", "from kassa_appliance.channels.relay.consumer import C\n", "only modules"),
        ("bus.py", "from kassa_appliance import __version__\n", "only modules"),
    ],
)
def test_the_checker_names_a_wrong_arrow_from_the_relay(
    source: str, text: str, expected: str
) -> None:
    arrows = arrows_of(Path(source), text, RELAY_PACKAGE)
    reasons = [reason for arrow in arrows if (reason := violation(arrow))]
    assert reasons and expected in reasons[0], (arrows, reasons)
    assert f"kassa_relay/{source}" in str(arrows[0])


def test_the_checker_allows_the_relay_its_pure_modules_and_its_own() -> None:
    text = (
        "from kassa_appliance.channels.relay.wire import TENANT_ID\n"
        "from kassa_appliance.bitrix.phpquery import parse_query\n"
        "from kassa_appliance.inputs import shorten\n"
        "from kassa_appliance import files\n"
        "from kassa_relay.bus import Bus\n"
        "from .registry import Registry\n"
    )
    arrows = arrows_of(Path("web_b24.py"), text, RELAY_PACKAGE)
    assert [arrow.target for arrow in arrows] == [
        "channels.relay.wire",
        "bitrix.phpquery",
        "inputs",
        "files",
    ]
    assert [violation(arrow) for arrow in arrows] == [None] * 4


def _module_file(module: str) -> Path:
    path = SOURCE.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _with_packages(module: str) -> list[str]:
    """``channels.relay.wire`` → the module and the packages importing it runs."""
    parts = module.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts) + 1)]


def test_what_the_relay_may_import_imports_nothing_of_ours() -> None:
    """The allow-list stays pure: the modules and the package ``__init__``s above them import
    nothing of ours but the shared helpers, so importing them loads nothing else."""
    modules = {m for allowed in RELAY_MAY_IMPORT | SHARED_HELPERS for m in _with_packages(allowed)}
    files = [SOURCE / "__init__.py", *(_module_file(module) for module in sorted(modules))]
    impure = [
        str(arrow)
        for path in files
        for arrow in arrows_of(path.relative_to(SOURCE), path.read_text(encoding="utf-8"))
        if part_of(arrow.target) != "shared"
    ]
    assert not impure, "kassa_relay's allowed modules import more of ours:\n" + "\n".join(impure)


RELAY_PROBE = """
import importlib, json, pkgutil, sys
import kassa_relay
for info in pkgutil.iter_modules(kassa_relay.__path__):
    importlib.import_module("kassa_relay." + info.name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "kassa_appliance")))
"""


def test_the_relay_loads_only_its_allowed_modules_of_the_appliance() -> None:
    """In a fresh interpreter, as ``kassa-relay`` starts: every module of the relay imported,
    then which ``kassa_appliance`` modules came with them."""
    out = subprocess.run(
        [sys.executable, "-c", RELAY_PROBE], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    loaded = set(json.loads(out))
    allowed = {
        f"{PACKAGE}.{m}" for a in RELAY_MAY_IMPORT | SHARED_HELPERS for m in _with_packages(a)
    }
    assert f"{PACKAGE}.channels.relay.wire" in loaded, "the probe imported no relay module"
    assert loaded - {PACKAGE} <= allowed, sorted(loaded - {PACKAGE} - allowed)


def test_no_module_is_too_long() -> None:
    long = {
        str(path.relative_to(root.parent)): lines
        for root in (SOURCE, RELAY_SOURCE)
        for path in root.rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert RELAY_SOURCE.is_dir(), f"{RELAY_SOURCE} is missing"
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by job): {long}"
