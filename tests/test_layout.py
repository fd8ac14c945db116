"""The source tree shows the architecture: imports point one way (docs/architecture.md).

Read from the source with :mod:`ast`, never by importing it:

* ``fiscal`` (the exactly-once core) imports nothing of ours but ``registers.base`` and the
  shared top-level helpers;
* ``registers`` imports nothing above itself (only itself and the shared helpers);
* ``bitrix`` and ``channels`` never import ``appliance``;
* nothing in the product imports ``testbeds``, except the CLI, inside a function (lazily).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "kassa_appliance"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE

SHARED_HELPERS = frozenset({"aio", "inputs", "fiscal_qr", "files", "setting_checks"})
"""Small top-level modules any part may use; they import nothing of ours but each other."""
SUBSYSTEMS = ("fiscal", "registers", "bitrix", "channels", "appliance", "testbeds")
MAX_MODULE_LINES = 450


@dataclass(frozen=True)
class ImportArrow:
    source: str
    """The importing module's file, relative to the package (``fiscal/engine.py``)."""
    target: str
    """The imported module, dotted, without the package prefix (``registers.base``)."""
    line: int
    lazy: bool
    """Inside a function body, so it runs only when that function is called."""

    def __str__(self) -> str:
        where = "inside a function" if self.lazy else "at module level"
        return f"{self.source}:{self.line} imports {PACKAGE}.{self.target} ({where})"


def _module_name(relative: Path) -> list[str]:
    parts = list(relative.with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def arrows_of(relative: Path, text: str) -> list[ImportArrow]:
    """Every import of one of our modules in a source file, with where it stands; string
    constants naming our modules (``importlib.import_module`` targets) count as lazy."""
    tree = ast.parse(text, filename=str(relative))
    package_parts = _module_name(relative)
    if relative.name != "__init__.py":
        package_parts = package_parts[:-1]
    found: list[ImportArrow] = []

    def add(target: str, node: ast.AST, lazy: bool) -> None:
        if target == PACKAGE or target.startswith(PACKAGE + "."):
            line = int(getattr(node, "lineno", 0))
            found.append(ImportArrow(str(relative), target[len(PACKAGE) + 1 :], line, lazy))

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, child, lazy)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package_parts[: len(package_parts) - (child.level - 1)]
                    module = ".".join([PACKAGE, *base, *([child.module] if child.module else [])])
                else:
                    module = child.module or ""
                if module == PACKAGE:  # from kassa_appliance import config
                    for alias in child.names:
                        add(f"{PACKAGE}.{alias.name}", child, lazy)
                else:
                    add(module, child, lazy)
            elif (
                isinstance(child, ast.Constant)
                and isinstance(child.value, str)
                and child.value.startswith(PACKAGE + ".")
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


def violation(arrow: ImportArrow) -> str | None:
    """Why an import points the wrong way, or None when it is allowed."""
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
    if source == "appliance" and target == "cli":
        return "appliance never imports the CLI"
    return None


def _dotted(relative: str) -> str:
    return ".".join(_module_name(Path(relative)))


def all_arrows() -> list[ImportArrow]:
    arrows: list[ImportArrow] = []
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE)
        arrows.extend(arrows_of(relative, path.read_text(encoding="utf-8")))
    return arrows


def test_every_subsystem_is_a_package_with_a_docstring() -> None:
    for name in SUBSYSTEMS:
        init = SOURCE / name / "__init__.py"
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


def test_no_module_is_too_long() -> None:
    long = {
        str(path.relative_to(SOURCE)): lines
        for path in SOURCE.rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by job): {long}"
