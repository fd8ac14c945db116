"""``kassa-appliance simulator …``: inject faults into the simulated register, move its clock,
show its counters. Works on ``<data_dir>/simulator`` while the daemon runs (the simulator
picks changes up with its next task).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

from kassa_appliance.registers.factory import simulator_state_dir
from kassa_appliance.registers.simulator import read_state
from kassa_appliance.registers.simulator_faults import (
    FAULT_NAMES,
    Fault,
    OfdBacklog,
    advance_clock,
    clear_faults,
    read_control,
    set_fault,
    set_fn_validity,
    set_ofd_backlog,
)


def register_cli(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulator`` command group to the main CLI."""
    parser = subparsers.add_parser(
        "simulator", help="control the simulated register (faults, clock, counters)"
    )
    commands = parser.add_subparsers(dest="simulator_command", required=True)

    fault = commands.add_parser("fault", help="switch one fault on or off")
    fault.add_argument(
        "fault_name", metavar="NAME", choices=FAULT_NAMES, help=", ".join(FAULT_NAMES)
    )
    how = fault.add_mutually_exclusive_group()
    how.add_argument("--count", type=int, help="fire on the next N tasks, then clear")
    how.add_argument("--rate", type=float, help="fire with this probability (0..1) per task")
    how.add_argument("--off", action="store_true", help="switch the fault off")
    fault.add_argument("--seconds", type=float, help="print_delay only: seconds per document")
    fault.set_defaults(handler=_fault)

    show = commands.add_parser("faults", help="show the control file (faults, clock offset)")
    show.set_defaults(handler=_faults)

    clear = commands.add_parser("clear", help="remove every fault")
    clear.set_defaults(handler=_clear)

    clock = commands.add_parser("clock", help="fast-forward the simulator's clock")
    clock.add_argument("--advance", type=float, required=True, metavar="HOURS")
    clock.set_defaults(handler=_clock)

    expiry = commands.add_parser("fn-expiry", help="set the date the FN stops working")
    when = expiry.add_mutually_exclusive_group(required=True)
    when.add_argument("--date", metavar="YYYY-MM-DD", help="this date")
    when.add_argument("--days", type=int, help="this many days from today")
    when.add_argument("--off", action="store_true", help="back to registration + 3 years")
    expiry.set_defaults(handler=_fn_expiry)

    backlog = commands.add_parser(
        "ofd-backlog", help="documents not sent to the OFD for days (the OFD link down)"
    )
    since = backlog.add_mutually_exclusive_group(required=True)
    since.add_argument("--days", type=float, help="the oldest unsent one is this many days old")
    since.add_argument("--off", action="store_true", help="the OFD link back: all sent")
    backlog.add_argument("--count", type=int, default=1, help="how many are unsent (default 1)")
    backlog.set_defaults(handler=_ofd_backlog)

    state = commands.add_parser("state", help="print the device counters")
    state.set_defaults(handler=_state)


def simulator_dir(args: argparse.Namespace) -> Path:
    data_dir: Path = args.data_dir
    return simulator_state_dir(Path(data_dir))


def _fault(args: argparse.Namespace) -> int:
    name: str = args.fault_name
    try:
        if args.off:
            set_fault(simulator_dir(args), name, None)
            print(f"{name}: off")
            return 0
        value = Fault(count=args.count, rate=args.rate, seconds=args.seconds)
        set_fault(simulator_dir(args), name, value)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{name}: on {json.dumps(value.to_json())}")
    return 0


def _faults(args: argparse.Namespace) -> int:
    try:
        control = read_control(simulator_dir(args))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(control.to_json(), end="")
    return 0


def _clear(args: argparse.Namespace) -> int:
    clear_faults(simulator_dir(args))
    print("all faults cleared")
    return 0


def _clock(args: argparse.Namespace) -> int:
    hours: float = args.advance
    offset = advance_clock(simulator_dir(args), hours * 3600)
    print(f"clock offset now {offset / 3600:g} h")
    return 0


def _fn_expiry(args: argparse.Namespace) -> int:
    day: date | str | None = None
    if args.days is not None:
        day = date.today() + timedelta(days=int(args.days))
    elif not args.off:
        day = str(args.date)
    try:
        validity = set_fn_validity(simulator_dir(args), day)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"FN valid until {validity}" if validity else "FN validity: registration + 3 years")
    return 0


def _ofd_backlog(args: argparse.Namespace) -> int:
    backlog = None
    try:
        if not args.off:
            oldest = datetime.now().astimezone() - timedelta(days=float(args.days))
            backlog = OfdBacklog(int(args.count), oldest.isoformat(timespec="seconds"))
        set_ofd_backlog(simulator_dir(args), backlog)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if backlog is None:
        print("OFD link back: the backlog is sent with the next task")
    else:
        print(f"OFD: {backlog.count} documents unsent since {backlog.since}")
    return 0


def _state(args: argparse.Namespace) -> int:
    state = read_state(simulator_dir(args))
    if state is None:
        print(f"no simulated register in {simulator_dir(args)} yet")
        return 1
    summary = {
        "serial": state.serial,
        "fnNumber": state.fn_number,
        "registrationNumber": state.registration_number,
        "fiscalDocumentNumber": state.fd_number,
        "shiftNumber": state.shift_number,
        "shiftOpen": state.shift_open,
        "shiftOpenedAt": state.shift_opened_at,
        "receiptNumber": state.receipt_number,
        "cashSum": str(state.cash_sum),
        "printPending": state.print_pending is not None,
        "documentCounts": state.document_counts,
        "shiftTotals": {kind: str(total) for kind, total in state.shift_totals.items()},
        "overallTotals": {kind: str(total) for kind, total in state.overall_totals.items()},
    }
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0
