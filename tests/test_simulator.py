"""The simulated Atol register: counters, shifts, validation, fiscal sign, QR and faults.

Every test runs the real simulator on real files in tmp_path; time comes from an injected
clock so the 24-hour shift rule can be tested without waiting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kassa_appliance.fiscal_qr import parse_qr_string, qr_string
from kassa_appliance.registers.base import ErrorCategory, Register, RegisterError
from kassa_appliance.registers.simulator import MOSCOW, SimulatorRegister, moscow_now
from kassa_appliance.registers.simulator_faults import (
    CONTROL_FILE_NAME,
    Fault,
    advance_clock,
    clear_faults,
    read_control,
    set_fault,
)
from kassa_appliance.registers.simulator_state import (
    STATE_SLOT_NAMES,
    StateStore,
    fiscal_sign,
)

START = datetime(2026, 11, 22, 9, 30, 15, tzinfo=MOSCOW)


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "simulator"


@pytest.fixture
def printed() -> list[str]:
    return []


@pytest.fixture
def simulator_register(
    state_dir: Path, clock: ManualClock, printed: list[str]
) -> Iterator[SimulatorRegister]:
    register = SimulatorRegister(
        state_dir, clock=clock, tape=printed.append, serial="00106900000001"
    )
    register.open()
    yield register
    register.close()


@pytest.fixture
def open_shift(simulator_register: SimulatorRegister) -> SimulatorRegister:
    simulator_register.process({"type": "openShift", "operator": OPERATOR})
    return simulator_register


OPERATOR = {"name": "Иванов И.И.", "vatin": "123654789507"}


def receipt(
    kind: str = "sell",
    price: float = 1500.0,
    payments: list[dict[str, Any]] | None = None,
    tax: str = "vat22",
    **extra: Any,
) -> dict[str, Any]:
    task: dict[str, Any] = {
        "type": kind,
        "taxationType": "usnIncome",
        "operator": OPERATOR,
        "items": [
            {
                "type": "position",
                "name": "Консультация",
                "price": price,
                "quantity": 1,
                "amount": price,
                "paymentMethod": "fullPayment",
                "paymentObject": "service",
                "tax": {"type": tax},
            }
        ],
        "payments": payments
        if payments is not None
        else [{"type": "electronically", "sum": price}],
        "total": price,
    }
    task.update(extra)
    return task


def fd_number(register: SimulatorRegister) -> int:
    result = register.process({"type": "getFnStatus"})
    number: int = result["fnStatus"]["fiscalDocumentNumber"]
    return number


def error_code(register: SimulatorRegister, task: dict[str, Any]) -> int:
    with pytest.raises(RegisterError) as caught:
        register.process(task)
    return caught.value.code


# -- identity and counters ------------------------------------------------------------


def test_is_a_register_and_new_device_starts_with_registration_as_fd_1(
    simulator_register: SimulatorRegister,
) -> None:
    assert isinstance(simulator_register, Register)
    assert simulator_register.name == "simulator"
    last = simulator_register.process({"type": "getLastFiscalParams", "forReceipt": False})
    params = last["fiscalParams"]
    assert params["fiscalDocumentNumber"] == 1
    assert len(params["fnNumber"]) == 16 and params["fnNumber"].isdigit()
    assert len(params["registrationNumber"]) == 16 and params["registrationNumber"].isdigit()
    assert fd_number(simulator_register) == 1
    no_receipt = simulator_register.process({"type": "getLastFiscalParams", "forReceipt": True})
    assert no_receipt == {"fiscalParams": {}}
    info = simulator_register.process({"type": "getDeviceInfo"})["deviceInfo"]
    assert info["serial"] == "00106900000001"
    assert info["model"] == 61
    assert info["receiptLineLength"] == 32
    assert (
        simulator_register.process({"type": "getShiftStatus"})["shiftStatus"]["state"] == "closed"
    )


def test_fd_numbers_run_across_all_fiscal_document_types(
    simulator_register: SimulatorRegister,
) -> None:
    register = simulator_register
    opened = register.process({"type": "openShift"})["fiscalParams"]
    sell = register.process(receipt("sell"))["fiscalParams"]
    refund = register.process(receipt("sellReturn"))["fiscalParams"]
    register.process({"type": "cashIn", "cashSum": 100})
    register.process({"type": "reportX"})
    correction = register.process(
        receipt("sellCorrection", correctionType="self", correctionBaseDate="2026.11.01")
    )["fiscalParams"]
    buy = register.process(receipt("buy"))["fiscalParams"]
    closed = register.process({"type": "closeShift"})["fiscalParams"]
    reopened = register.process({"type": "openShift"})["fiscalParams"]

    numbers = [p["fiscalDocumentNumber"] for p in (opened, sell, refund, correction, buy, closed)]
    assert numbers == [2, 3, 4, 5, 6, 7], "cashIn and reportX must not consume FD numbers"
    assert reopened["fiscalDocumentNumber"] == 8
    assert [p["fiscalReceiptNumber"] for p in (sell, refund, correction, buy)] == [1, 2, 3, 4]
    assert closed["receiptsCount"] == 4
    assert (opened["shiftNumber"], closed["shiftNumber"], reopened["shiftNumber"]) == (1, 1, 2)
    assert fd_number(register) == 8


def test_receipt_number_restarts_in_each_shift(simulator_register: SimulatorRegister) -> None:
    register = simulator_register
    register.process({"type": "openShift"})
    register.process(receipt())
    second = register.process(receipt())["fiscalParams"]
    register.process({"type": "closeShift"})
    register.process({"type": "openShift"})
    first_of_shift_2 = register.process(receipt(), request_id="job-7")["fiscalParams"]
    assert second["fiscalReceiptNumber"] == 2
    assert first_of_shift_2["fiscalReceiptNumber"] == 1
    assert first_of_shift_2["shiftNumber"] == 2
    status = register.process({"type": "getShiftStatus"})["shiftStatus"]
    assert status == {
        "state": "opened",
        "number": 2,
        "expiredTime": (START + timedelta(hours=24)).isoformat(),
        "documentsCount": 2,
    }


def test_cash_counter_follows_cash_payments_change_and_refunds(
    open_shift: SimulatorRegister,
) -> None:
    register = open_shift
    register.process(receipt(price=1500.0, payments=[{"type": "cash", "sum": 2000.0}]))
    assert register.process({"type": "cashIn", "cashSum": 100.5}) == {
        "counters": {"cashSum": 1600.5}
    }
    register.process(receipt("sellReturn", price=500.0, payments=[{"type": "cash", "sum": 500.0}]))
    register.process(receipt("buy", price=99.0))  # paid electronically: drawer untouched
    assert register.process({"type": "getCashDrawerStatus"})["counters"] == {"cashSum": 1100.5}
    before = fd_number(register)
    assert error_code(register, {"type": "cashOut", "cashSum": 2000}) == 80
    big_refund = receipt("sellReturn", price=5000.0, payments=[{"type": "cash", "sum": 5000.0}])
    assert error_code(register, big_refund) == 80
    assert fd_number(register) == before
    assert register.process({"type": "cashOut", "cashSum": 1100.5}) == {
        "counters": {"cashSum": 0.0}
    }


def test_totals_and_document_counts_per_type(open_shift: SimulatorRegister) -> None:
    register = open_shift
    for price in (10.0, 20.5, 30.0):
        register.process(receipt(price=price))
    register.process(receipt("sellReturn", price=5.0))
    state = register.state()
    assert state.document_counts["sell"] == 3
    assert state.document_counts["sellReturn"] == 1
    assert state.document_counts["openShift"] == 1
    assert state.shift_totals["sell"] == Decimal("60.50")
    register.process({"type": "closeShift"})
    register.process({"type": "openShift"})
    register.process(receipt(price=1.0))
    state = register.state()
    assert state.shift_totals == {"sell": Decimal("1.00")}
    assert state.overall_totals["sell"] == Decimal("61.50")
    assert state.document_counts["sell"] == 4


def test_state_survives_a_new_instance_on_the_same_directory(
    open_shift: SimulatorRegister, state_dir: Path, clock: ManualClock
) -> None:
    sold = open_shift.process(receipt())["fiscalParams"]
    open_shift.close()
    again = SimulatorRegister(state_dir, clock=clock, serial="ignored-after-creation")
    again.open()
    try:
        assert again.process({"type": "getDeviceInfo"})["deviceInfo"]["serial"] == "00106900000001"
        last = again.process({"type": "getLastFiscalParams", "forReceipt": True})["fiscalParams"]
        assert last == sold
        assert again.process(receipt())["fiscalParams"]["fiscalDocumentNumber"] == 4
    finally:
        again.close()


def test_a_torn_state_write_falls_back_to_the_previous_state(
    open_shift: SimulatorRegister, state_dir: Path
) -> None:
    open_shift.process(receipt())  # FD 3
    open_shift.close()
    slots = [state_dir / name for name in STATE_SLOT_NAMES]
    newest = max(slots, key=lambda path: int(path.read_bytes().split()[1]))
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # as if the machine died mid-write
    store = StateStore(state_dir)
    store.open()
    try:
        state = store.load()
    finally:
        store.close()
    assert state is not None and state.fd_number == 2


# -- shift rules ----------------------------------------------------------------------


def test_receipts_need_an_open_shift_and_shift_state_errors(
    simulator_register: SimulatorRegister,
) -> None:
    register = simulator_register
    assert error_code(register, receipt()) == 73
    assert error_code(register, {"type": "closeShift"}) == 73
    assert error_code(register, {"type": "cashIn", "cashSum": 1}) == 73
    register.process({"type": "openShift"})
    with pytest.raises(RegisterError) as caught:
        register.process({"type": "openShift"})
    assert caught.value.code == 83
    assert fd_number(register) == 2


def test_shift_expires_after_24_hours(open_shift: SimulatorRegister, clock: ManualClock) -> None:
    register = open_shift
    clock.advance(hours=23, minutes=59)
    assert register.process(receipt())["fiscalParams"]["fiscalDocumentNumber"] == 3
    clock.advance(minutes=2)
    with pytest.raises(RegisterError) as caught:
        register.process(receipt())
    assert caught.value.code == 68
    assert caught.value.category is ErrorCategory.SHIFT
    assert register.process({"type": "getShiftStatus"})["shiftStatus"]["state"] == "expired"
    assert register.process({"type": "getDeviceStatus"})["deviceStatus"]["shift"] == "expired"
    closed = register.process({"type": "closeShift"})["fiscalParams"]
    assert (closed["fiscalDocumentNumber"], closed["receiptsCount"]) == (4, 1)
    register.process({"type": "openShift"})
    assert register.process(receipt())["fiscalParams"]["shiftNumber"] == 2


def test_clock_offset_in_the_control_file_fast_forwards_time(
    open_shift: SimulatorRegister, state_dir: Path
) -> None:
    advance_clock(state_dir, 25 * 3600)
    assert open_shift.process({"type": "getShiftStatus"})["shiftStatus"]["state"] == "expired"
    assert error_code(open_shift, receipt()) == 68


def test_default_clock_is_moscow_time() -> None:
    assert moscow_now().utcoffset() == timedelta(hours=3)


# -- task validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "code", "mentions"),
    [
        # Issue 11: Atol's codes and texts (the driver's JSON-script messages for 501).
        ({"type": "printFiscalRainbow"}, 501, "printFiscalRainbow"),
        (receipt(payments=[{"type": "cash", "sum": 1000.0}]), 66, "Чек оплачен не полностью"),
        (receipt(tax="vat33"), 144, "items[0].tax.type"),
        (receipt(taxationType="flatTax"), 501, 'поля "taxationType" (flatTax)'),
        (receipt(total=1498.0), 227, "Неверный итог чека"),
        (receipt(total=1500.01), 227, "Неверный итог чека"),
        (receipt(items=[]), 501, "items"),
        (receipt(price="1500"), 501, 'Поле "items[0].price" имеет неверный тип'),
        (receipt(payments=[{"type": "bitcoin", "sum": 1500.0}]), 501, "payments[0].type"),
        (receipt(payments=[{"type": 12, "sum": 1500.0}]), 60, "Неверный вид оплаты"),
        (
            receipt(payments=[{"type": "electronically", "sum": 2000.0}]),
            52,
            "Сумма не наличных платежей превышает сумму чека",
        ),
        ({"type": "cashIn", "cashSum": -5}, 16, "cashSum"),
    ],
)
def test_the_register_refuses_bad_tasks_without_changing_state(
    open_shift: SimulatorRegister, task: dict[str, Any], code: int, mentions: str
) -> None:
    with pytest.raises(RegisterError) as caught:
        open_shift.process(task)
    assert caught.value.code == code
    assert mentions in caught.value.description
    assert caught.value.category is ErrorCategory.DEFINITIVE
    assert fd_number(open_shift) == 2


def test_process_before_open_is_refused(state_dir: Path) -> None:
    register = SimulatorRegister(state_dir)
    with pytest.raises(RegisterError) as caught:
        register.process({"type": "getFnStatus"})
    assert caught.value.code == 1


# -- results, fiscal sign and QR ---------------------------------------------------


def test_results_carry_exactly_the_atol_fields(open_shift: SimulatorRegister) -> None:
    register = open_shift
    result = register.process(receipt())
    assert result["warnings"] is None
    assert list(result["fiscalParams"]) == [
        "fiscalDocumentDateTime",
        "fiscalDocumentNumber",
        "fiscalDocumentSign",
        "fiscalReceiptNumber",
        "fnNumber",
        "registrationNumber",
        "shiftNumber",
        "total",
        "fnsUrl",
    ]
    assert result["fiscalParams"]["fiscalDocumentDateTime"] == "2026-11-22T09:30:00+03:00"
    assert result["fiscalParams"]["total"] == 1500.0
    assert result["fiscalParams"]["fnsUrl"] == "www.nalog.gov.ru"
    assert set(register.process({"type": "getDeviceStatus"})["deviceStatus"]) == {
        "shift",
        "currentDateTime",
        "blocked",
        "coverOpened",
        "paperPresent",
        "fiscal",
        "fnFiscal",
        "fnPresent",
        "cashDrawerOpened",
    }
    fn_info = register.process({"type": "getFnInfo"})["fnInfo"]
    assert fn_info["livePhase"] == "fiscalMode" and fn_info["ffdVersion"] == "1.2"
    fn_status = register.process({"type": "getFnStatus"})["fnStatus"]
    assert fn_status["fiscalReceiptNumber"] == 1
    assert set(fn_status["warnings"]) == {
        "memoryOverflow",
        "needReplacement",
        "ofdTimeout",
        "resourceExhausted",
        "criticalError",
    }
    closed = register.process({"type": "closeShift"})
    assert set(closed["fiscalParams"]) == {
        "fiscalDocumentDateTime",
        "fiscalDocumentNumber",
        "fiscalDocumentSign",
        "fnNumber",
        "registrationNumber",
        "shiftNumber",
        "receiptsCount",
    }
    last_any = register.process({"type": "getLastFiscalParams", "forReceipt": False})
    assert last_any["fiscalParams"] == closed["fiscalParams"]
    last_receipt = register.process({"type": "getLastFiscalParams", "forReceipt": True})
    assert last_receipt["fiscalParams"] == result["fiscalParams"]


def test_fiscal_sign_is_deterministic_and_at_most_ten_digits(open_shift: SimulatorRegister) -> None:
    signs = []
    for price in (1.0, 2.0, 3.0, 4.0, 5.0):
        params = open_shift.process(receipt(price=price))["fiscalParams"]
        sign = params["fiscalDocumentSign"]
        assert sign == fiscal_sign(
            params["fnNumber"],
            params["fiscalDocumentNumber"],
            params["fiscalDocumentDateTime"],
            Decimal(str(params["total"])),
        )
        assert sign.isdigit() and len(sign) <= 10 and (sign == "0" or sign[0] != "0")
        signs.append(sign)
    assert len(set(signs)) == 5
    assert fiscal_sign("9999078900000961", 71, "2018-03-06T13:52:00+03:00", Decimal("390.75")) == (
        fiscal_sign("9999078900000961", 71, "2018-03-06T13:52:00+03:00", Decimal("390.75"))
    )


KNOWN_PARAMS = {
    "fiscalDocumentDateTime": "2018-03-06T13:52:00+03:00",
    "fiscalDocumentNumber": 71,
    "fiscalDocumentSign": "0094325660",
    "fiscalReceiptNumber": 1,
    "fnNumber": "9999078900000961",
    "registrationNumber": "0000000001002292",
    "shiftNumber": 12,
    "total": 390.7,
    "fnsUrl": "www.nalog.gov.ru",
}


@pytest.mark.parametrize(
    ("operation", "code"),
    [("sell", 1), ("sellReturn", 2), ("buy", 3), ("buyReturn", 4), ("sellReturnCorrection", 2)],
)
def test_qr_string_of_a_known_document(operation: str, code: int) -> None:
    assert qr_string(KNOWN_PARAMS, operation) == (
        f"t=20180306T1352&s=390.70&fn=9999078900000961&i=71&fp=94325660&n={code}"
    )


def test_qr_string_of_a_simulated_receipt_parses_back(open_shift: SimulatorRegister) -> None:
    params = open_shift.process(receipt("buyReturn", price=12.3))["fiscalParams"]
    parsed = parse_qr_string(qr_string(params, "buyReturn"))
    assert parsed["date_time"] == datetime(2026, 11, 22, 9, 30)
    assert parsed["total"] == Decimal("12.30")
    assert parsed["fn_number"] == params["fnNumber"]
    assert parsed["fiscal_document_number"] == params["fiscalDocumentNumber"]
    assert parsed["fiscal_sign"] == str(int(params["fiscalDocumentSign"]))
    assert parsed["operation"] == 4


def test_parse_qr_string_with_and_without_seconds() -> None:
    with_seconds = parse_qr_string(
        "t=20170904T140900&s=0.01&fn=9999078900002287&i=106&fp=4160536402&n=1"
    )
    assert with_seconds["date_time"] == datetime(2017, 9, 4, 14, 9, 0)
    assert with_seconds["total"] == Decimal("0.01")
    assert with_seconds["fiscal_sign"] == "4160536402"
    without = parse_qr_string(
        "t=20201225T1016&s=1113.99&fn=9282440300829880&i=10556&fp=189504453&n=1"
    )
    assert without["date_time"] == datetime(2020, 12, 25, 10, 16)
    assert without["fiscal_document_number"] == 10556
    with pytest.raises(ValueError, match="lacks fp"):
        parse_qr_string("t=20201225T1016&s=1113.99&fn=9282440300829880&i=10556&n=1")
    with pytest.raises(ValueError, match="t="):
        parse_qr_string("t=2020-12-25&s=1.00&fn=1&i=1&fp=1&n=1")
    with pytest.raises(ValueError, match="openShift"):
        qr_string(KNOWN_PARAMS, "openShift")


# -- faults ----------------------------------------------------------------------------


def test_no_paper_refuses_before_fiscalisation(
    open_shift: SimulatorRegister, state_dir: Path
) -> None:
    register = open_shift
    register.set_fault("no_paper")
    assert register.process({"type": "getDeviceStatus"})["deviceStatus"]["paperPresent"] is False
    with pytest.raises(RegisterError) as caught:
        register.process(receipt())
    assert (caught.value.code, caught.value.category) == (44, ErrorCategory.WAIT)
    assert error_code(register, {"type": "reportX"}) == 44
    assert fd_number(register) == 2
    set_fault(state_dir, "no_paper", None)
    assert register.process(receipt())["fiscalParams"]["fiscalDocumentNumber"] == 3


def test_paper_running_out_mid_document_then_continue_print(
    open_shift: SimulatorRegister, state_dir: Path, printed: list[str]
) -> None:
    register = open_shift
    printed.clear()
    register.set_fault("paper_runs_out", Fault(count=1))
    result = register.process(receipt())
    assert result["warnings"] == {"notPrinted": True}
    assert result["fiscalParams"]["fiscalDocumentNumber"] == 3
    assert printed == []
    assert register.process({"type": "getDeviceStatus"})["deviceStatus"]["paperPresent"] is False
    assert error_code(register, receipt()) == 44
    assert error_code(register, {"type": "continuePrint"}) == 44
    assert set(read_control(state_dir).faults) == {"no_paper"}

    register.set_fault("no_paper", None)  # paper loaded
    assert register.process({"type": "continuePrint"}) == {}
    assert len(printed) == 1 and "ФД                             3" in printed[0]
    assert register.process({"type": "continuePrint"}) == {}  # nothing left: still fine
    assert len(printed) == 1
    follow_up = register.process(receipt())
    assert follow_up["warnings"] is None
    assert follow_up["fiscalParams"]["fiscalDocumentNumber"] == 4


def test_cover_open_and_fn_fault(open_shift: SimulatorRegister) -> None:
    register = open_shift
    register.set_fault("cover_open")
    assert register.process({"type": "getDeviceStatus"})["deviceStatus"]["coverOpened"] is True
    assert error_code(register, receipt()) == 45
    register.clear_faults()
    register.set_fault("fn_fault")
    with pytest.raises(RegisterError) as caught:
        register.process(receipt())
    assert (caught.value.code, caught.value.category) == (118, ErrorCategory.DEFINITIVE)
    fn_status = register.process({"type": "getFnStatus"})["fnStatus"]
    assert fn_status["warnings"]["criticalError"] is True
    assert fn_status["fiscalDocumentNumber"] == 2


def test_connection_lost_before_fiscalisation_changes_nothing(
    open_shift: SimulatorRegister,
) -> None:
    register = open_shift
    register.set_fault("connection_lost_before")
    with pytest.raises(RegisterError) as caught:
        register.process(receipt())
    assert (caught.value.code, caught.value.category) == (2, ErrorCategory.WAIT)
    assert fd_number(register) == 2  # queries still answer
    assert register.state().document_counts.get("sell", 0) == 0


def test_an_interrupted_receipt_close_is_ambiguous_but_the_document_exists(
    open_shift: SimulatorRegister,
) -> None:
    open_shift.set_fault("receipt_interrupted", Fault(count=1))
    with pytest.raises(RegisterError) as caught:
        open_shift.process(receipt(price=55.0))
    assert (caught.value.code, caught.value.category) == (177, ErrorCategory.AMBIGUOUS)
    assert fd_number(open_shift) == 3
    last = open_shift.process({"type": "getLastFiscalParams", "forReceipt": True})
    assert last["fiscalParams"]["total"] == 55.0
    assert open_shift.process(receipt())["fiscalParams"]["fiscalDocumentNumber"] == 4


def test_connection_lost_after_fiscalisation_is_ambiguous_but_the_document_exists(
    open_shift: SimulatorRegister, state_dir: Path, clock: ManualClock
) -> None:
    register = open_shift
    register.set_fault("connection_lost_after", Fault(count=1))
    with pytest.raises(RegisterError) as caught:
        register.process(receipt(price=77.0))
    assert (caught.value.code, caught.value.category) == (241, ErrorCategory.AMBIGUOUS)
    assert fd_number(register) == 3
    recovered = SimulatorRegister(state_dir, clock=clock)
    recovered.open()
    try:
        last = recovered.process({"type": "getLastFiscalParams", "forReceipt": True})
        assert last["fiscalParams"]["fiscalDocumentNumber"] == 3
        assert last["fiscalParams"]["total"] == 77.0
        assert recovered.process({"type": "continuePrint"}) == {}
    finally:
        recovered.close()
    assert register.process(receipt())["fiscalParams"]["fiscalDocumentNumber"] == 4


def test_count_limited_fault_clears_itself(open_shift: SimulatorRegister, state_dir: Path) -> None:
    register = open_shift
    register.set_fault("cover_open", Fault(count=2))
    assert error_code(register, receipt()) == 45
    assert read_control(state_dir).faults["cover_open"] == Fault(count=1)
    assert error_code(register, {"type": "cashIn", "cashSum": 5}) == 45
    assert "cover_open" not in read_control(state_dir).faults
    assert register.process(receipt())["fiscalParams"]["fiscalDocumentNumber"] == 3


def test_rate_faults_are_reproducible_for_a_seed(tmp_path: Path, clock: ManualClock) -> None:
    def outcomes(directory: Path) -> list[bool]:
        register = SimulatorRegister(directory, clock=clock)
        register.open()
        register.process({"type": "openShift"})
        set_fault(directory, "connection_lost_before", Fault(rate=0.5))
        seen = []
        for _ in range(24):
            try:
                register.process(receipt())
                seen.append(True)
            except RegisterError as exc:
                assert exc.code == 2
                seen.append(False)
        register.close()
        return seen

    first, second = outcomes(tmp_path / "a"), outcomes(tmp_path / "b")
    assert first == second
    assert True in first and False in first


def test_control_file_is_picked_up_by_another_instance(
    open_shift: SimulatorRegister, state_dir: Path, clock: ManualClock
) -> None:
    other = SimulatorRegister(state_dir, clock=clock)
    other.open()
    try:
        other.set_fault("cover_open")
        assert error_code(open_shift, receipt()) == 45
        clear_faults(state_dir)
        assert open_shift.process(receipt())["fiscalParams"]["fiscalDocumentNumber"] == 3
        control = json.loads((state_dir / CONTROL_FILE_NAME).read_text())
        assert control["faults"] == {}
    finally:
        other.close()


def test_bad_fault_settings_are_refused_clearly(state_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown simulator fault 'paper_jam'"):
        set_fault(state_dir, "paper_jam", Fault())
    with pytest.raises(ValueError, match="rate must be between 0 and 1"):
        set_fault(state_dir, "no_paper", Fault(rate=2.0))
    with pytest.raises(ValueError, match="print_delay needs seconds"):
        set_fault(state_dir, "print_delay", Fault(count=1))
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / CONTROL_FILE_NAME).write_text('{"faults": {"no_paper": {"cnt": 1}}}')
    with pytest.raises(ValueError, match="unknown fields"):
        read_control(state_dir)


def test_print_delay_fault_with_count_is_consumed_by_printed_documents(
    open_shift: SimulatorRegister, state_dir: Path
) -> None:
    open_shift.set_fault("print_delay", Fault(count=2, seconds=0.001))
    open_shift.process({"type": "getFnStatus"})  # queries print nothing
    assert read_control(state_dir).faults["print_delay"].count == 2
    open_shift.process(receipt())
    open_shift.process({"type": "reportX"})
    assert "print_delay" not in read_control(state_dir).faults
