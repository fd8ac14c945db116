"""The full-path demo: Bitrix24 portal emulator → Push&Pull doorbell → daemon subprocess →
simulated register → result written back to Bitrix24, all on loopback.

This process plays the Bitrix24 side: it runs the portal emulator and acts as the producer
(the Kassa app): for each sample task it stores a ``KASSAJOB`` item, rings the ``kassa.job``
doorbell, and watches the item over REST until the appliance marks it ``done`` (RESULT with
the fiscal params and the QR string) or ``failed`` (ERROR with the reason). The daemon's
paper tape is shown as it prints, marked with ``│``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kassa_appliance.bitrix.jobs import STATE_DONE, STATE_FAILED
from kassa_appliance.cli import describe_fiscal_params
from kassa_appliance.registers.tape import qr_lines
from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_appliance.testbeds.bitrix24.portal_page import BUILD_HINT
from kassa_appliance.testbeds.bitrix24.state import ADMIN_USER_ID, CASHIER_USER_ID
from kassa_appliance.testbeds.demo_chat import ChatTimeout
from kassa_appliance.testbeds.demo_chat_run import BOT_SECTION, run_chat_demo
from kassa_appliance.testbeds.demo_stack import ApplianceStack, StackError, StackSettings

WATCH_POLL_SECONDS = 0.1
TAPE_SETTLE_SECONDS = 0.2
"""Grace for the last tape lines to come through the pipe before an outcome is shown."""
REPEAT_WATCH_SECONDS = 1.0

CHATTY_LOGGERS = (
    "httpx",
    "websockets",
    "kassa_appliance.testbeds.bitrix24",
    "kassa_appliance.bitrix",
)
"""Per-request INFO lines of the in-process portal and producer; they would bury the tape."""

EXIT_OK = 0
EXIT_UNEXPECTED = 1


@dataclass(frozen=True)
class DemoSettings:
    root: Path
    print_delay: float
    job_timeout: float = 60.0
    keep_state: bool = False


@dataclass
class Outcome:
    name: str
    job_id: str
    state: str
    result: dict[str, Any] | None
    error: dict[str, Any] | None

    @property
    def expected(self) -> bool:
        """Malformed samples must be refused; every other sample must be fiscalised."""
        if "malformed" in self.name:
            return self.state == STATE_FAILED
        return self.state == STATE_DONE and bool((self.result or {}).get("qr"))


class TapeCounter:
    """Shows the daemon's tape lines and counts them (to show nothing printed twice)."""

    def __init__(self) -> None:
        self.lines = 0

    def __call__(self, line: str) -> None:
        self.lines += 1
        print(f"  │ {line}", flush=True)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _parse_json(text: object) -> dict[str, Any] | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return {"raw": text}
    return value if isinstance(value, dict) else {"value": value}


def describe_result(result: dict[str, Any]) -> list[str]:
    """RESULT of a done job: the fiscal params line and the QR string."""
    lines: list[str] = []
    params = result.get("fiscalParams")
    if isinstance(params, dict):
        lines.append("    " + describe_fiscal_params(params))
    elif result.get("result") is not None:
        lines.append("    " + json.dumps(result["result"], ensure_ascii=False))
    qr = result.get("qr")
    if isinstance(qr, str):
        lines.append(f"    QR: {qr}")
        lines.extend("    " + row for row in qr_lines(qr))
    return lines


async def watch_job(
    stack: ApplianceStack, name: str, job_id: str, timeout: float
) -> Outcome | None:
    """Poll the KASSAJOB item over REST until it is done or failed; None on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen: str | None = None
    while loop.time() < deadline:
        stack.check_daemon()
        item = await stack.fetch_item(job_id)
        props = (item or {}).get("PROPERTY_VALUES") or {}
        state = str(props.get("STATE") or "")
        if state != seen:
            seen = state
            if state not in (STATE_DONE, STATE_FAILED):
                _say(f"  ... KASSAJOB STATE={state}")
        if state in (STATE_DONE, STATE_FAILED):
            return Outcome(
                name,
                job_id,
                state,
                _parse_json(props.get("RESULT")),
                _parse_json(props.get("ERROR")),
            )
        await asyncio.sleep(WATCH_POLL_SECONDS)
    return None


def show_outcome(outcome: Outcome) -> None:
    if outcome.state == STATE_DONE:
        _say(f"<<< {outcome.job_id}: done")
        for line in describe_result(outcome.result or {}):
            _say(line)
    else:
        error = outcome.error or {}
        _say(f"<<< {outcome.job_id}: failed")
        message = str(error.get("message")).replace("\n", "\n      ")
        _say(f"    ERROR {error.get('code')}: {message}")
    if not outcome.expected:
        _say("    !!! not the expected outcome for this sample")


async def run_job(
    stack: ApplianceStack, number: int, total: int, name: str, task: Any, timeout: float
) -> Outcome | None:
    job_id = f"demo-{number:02d}-{uuid.uuid4().hex[:8]}"
    kind = task.get("type") if isinstance(task, dict) else type(task).__name__
    _say(f"\n=== {number}/{total} {name}: {kind}")
    item_id = await stack.publish(job_id, task)
    _say(f">>> KASSAJOB item #{item_id} stored (NAME={job_id}, STATE=new); doorbell kassa.job rung")
    outcome = await watch_job(stack, name, job_id, timeout)
    await asyncio.sleep(TAPE_SETTLE_SECONDS)
    if outcome is None:
        _say(f"<<< {job_id}: no outcome within {timeout:g} s")
        return None
    show_outcome(outcome)
    return outcome


async def show_repeat_doorbell(stack: ApplianceStack, tape: TapeCounter, job_id: str) -> bool:
    """Ring the doorbell of a finished job again: nothing must print. True if nothing did."""
    _say(f"\n=== the doorbell for {job_id} rung again")
    printed_before = tape.lines
    await stack.ring(job_id)
    await asyncio.sleep(REPEAT_WATCH_SECONDS)
    item = await stack.fetch_item(job_id)
    state = ((item or {}).get("PROPERTY_VALUES") or {}).get("STATE")
    quiet = tape.lines == printed_before
    verdict = "nothing printed twice" if quiet else "!!! the register printed again"
    _say(f"<<< {job_id}: still {state}; {verdict}")
    return quiet


def quiet_chatty_loggers() -> None:
    for name in CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))


def app_url_line(emulator: Emulator) -> str:
    """Where a person opens the Kassa app against this portal (or how to build it)."""
    page = emulator.portal_page
    if not page.files.available():
        return f"  Kassa app: not built at {page.files.source}; {BUILD_HINT}"
    return (
        f"  Kassa app in a browser (while the demo runs): {page.url(CASHIER_USER_ID)} "
        f"(cashier), {page.url(ADMIN_USER_ID)} (admin); "
        "`kassa-appliance emulator` keeps a portal up"
    )


async def show_chat(stack: ApplianceStack) -> bool:
    """The chat conversation (demo_chat_run.py); False, with why, if it did not finish."""
    try:
        return await run_chat_demo(stack)
    except ChatTimeout as error:
        _say(f"<<< the chat did not finish: {error}")
        return False


async def run_full_demo(settings: DemoSettings, samples: list[tuple[str, Any]]) -> int:
    quiet_chatty_loggers()
    tape = TapeCounter()
    stack_settings = StackSettings(
        root=settings.root,
        print_delay=settings.print_delay,
        tape=tape,
        sections={"b24bot": BOT_SECTION},
    )
    _say("Kassa Appliance demo: Bitrix24 portal emulator → Push&Pull → appliance daemon")
    outcomes: list[Outcome | None] = []
    quiet = True
    chat_ok = False
    status: int | None = None
    try:
        async with ApplianceStack(stack_settings) as stack:
            assert stack.emulator is not None and stack.push is not None
            assert stack.daemon is not None
            _say(f"  portal emulator  {stack.emulator.url} (push {stack.push.websocket_url})")
            _say(
                f"  appliance daemon pid {stack.daemon.pid}, data dir {stack.data_dir}, "
                f"simulated register, print delay {settings.print_delay:g} s"
            )
            _say(f"  kassa id {stack_settings.kassa_id}; daemon log {stack.log_path}")
            _say(app_url_line(stack.emulator))
            _say("  linked: KASSAJOB storage ready, push connected")
            for number, (name, task) in enumerate(samples, start=1):
                outcomes.append(
                    await run_job(stack, number, len(samples), name, task, settings.job_timeout)
                )
            first = outcomes[0] if outcomes else None
            if first is not None and first.state == STATE_DONE:
                quiet = await show_repeat_doorbell(stack, tape, first.job_id)
            chat_ok = await show_chat(stack)
            _say("\n=== stopping the daemon (SIGTERM)")
            status = await stack.stop_daemon()
            _say(f"  daemon exited with status {status}")
    except StackError as error:
        _say(f"\ndemo failed: {error}")
        return EXIT_UNEXPECTED
    finished = [o for o in outcomes if o is not None]
    done = sum(o.state == STATE_DONE for o in finished)
    failed = sum(o.state == STATE_FAILED for o in finished)
    all_expected = len(finished) == len(samples) and all(o.expected for o in finished)
    all_expected = all_expected and chat_ok
    _say(
        f"\n{len(samples)} job(s): {done} done, {failed} failed; "
        + ("the chat receipt's QR reached the chat" if chat_ok else "the chat receipt did not")
        + (" — as expected" if all_expected and quiet else " — NOT as expected")
    )
    if settings.keep_state:
        _say(f"state kept in {settings.root}")
    return EXIT_OK if all_expected and quiet and status == 0 else EXIT_UNEXPECTED
