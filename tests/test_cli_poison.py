"""The CLI with no daemon running: a poison job fails alone, the next print works."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli import cli, data_dir, sample, sells

__all__ = ["data_dir"]  # the fixture, shared with test_cli

DEEP_COMPANY_INFO = {"a": {}}
for _ in range(600):
    DEEP_COMPANY_INFO = {"a": DEEP_COMPANY_INFO}


def test_a_poison_print_fails_with_exit_3_and_the_next_print_works(data_dir: Path) -> None:
    typed_list = cli(data_dir, "print", "-", "--id", "BAD", "--timeout", "20", stdin='{"type": []}')
    typed_object = cli(data_dir, "print", "-", "--timeout", "20", stdin='{"type": {}}')
    deep_task = json.loads(Path(sample("01-sell-cash.json")).read_text(encoding="utf-8"))
    deep_task["companyInfo"] = DEEP_COMPANY_INFO
    deep = cli(data_dir, "print", "-", "--timeout", "20", stdin=json.dumps(deep_task))
    good = cli(data_dir, "print", sample("01-sell-cash.json"), "--timeout", "20")

    assert typed_list.returncode == 3, typed_list.stdout + typed_list.stderr
    assert "job BAD: failed" in typed_list.stdout and "type: expected one of" in typed_list.stdout
    assert typed_object.returncode == 3, typed_object.stdout + typed_object.stderr
    # Refused at the door (exit 2, depth limit) or failed by the engine (exit 3): never stuck.
    assert deep.returncode in (2, 3), deep.stdout + deep.stderr
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Traceback" not in typed_list.stderr + typed_object.stderr + deep.stderr
    assert sells(data_dir) == 1
