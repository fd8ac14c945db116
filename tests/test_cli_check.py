"""`kassa-appliance check`: the dry run validates and normalises, never touching a register."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

SAMPLES = resources.files("kassa_appliance") / "samples"


def check(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KASSA_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-m", "kassa_appliance", "check", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_a_valid_task_prints_its_normalised_form_and_exits_0(tmp_path: Path) -> None:
    task = {
        "type": "sell",
        "timestamp": "01.02.2026 12:00:00",
        "clientInfo": {"emailOrPhone": ""},
        "items": [
            {
                "type": "position",
                "name": "Кофе",
                "price": 436.79999999999995,
                "quantity": 1,
                "amount": 436.79999999999995,
                "paymentObject": "pay",
                "paymentMethod": "4",
                "tax": {"type": "20"},
            }
        ],
        "payments": [{"type": 1, "sum": 436.8}],
    }

    done = check(tmp_path, "-", stdin=json.dumps(task))

    assert done.returncode == 0, done.stdout + done.stderr
    driver = json.loads(done.stdout)
    assert "timestamp" not in driver and "clientInfo" in driver
    assert driver["clientInfo"] == {}
    item = driver["items"][0]
    assert (item["price"], item["amount"], driver["total"]) == (436.8, 436.8, 436.8)
    assert (item["paymentObject"], item["paymentMethod"]) == ("composite", "fullPayment")
    assert item["tax"] == {"type": "vat20"} and driver["payments"][0]["type"] == "electronically"
    assert not (tmp_path / "data").exists()  # no journal, no register state


def test_a_refused_task_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    refused = check(tmp_path, str(SAMPLES / "04-malformed.json"))

    assert refused.returncode == 2
    lines = refused.stdout.splitlines()
    assert lines[0] == "invalid task (2 problems):"
    assert lines[1].startswith("  - items[0].paymentObject: 'exciseWithoutMarking ' has spaces")
    assert lines[2].startswith("  - payments[0].type: 'card' is not allowed")


def test_more_than_twenty_problems_are_all_listed(tmp_path: Path) -> None:
    items = [
        {
            "type": "position",
            "name": "x",
            "price": "1",
            "quantity": 1,
            "amount": 1,
            "tax": {"type": "vat20"},
        }
        for _ in range(25)
    ]
    refused = check(
        tmp_path, "-", stdin=json.dumps({"type": "sell", "items": items, "payments": []})
    )

    assert refused.returncode == 2
    assert refused.stdout.startswith("invalid task (25 problems):")
    assert "items[24].price: '1' is a string" in refused.stdout


def test_input_that_is_not_json_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "sell",', encoding="utf-8")

    refused = check(tmp_path, str(broken))

    assert refused.returncode == 2 and "not valid JSON" in refused.stderr
