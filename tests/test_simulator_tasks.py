"""The task types real integrations call besides receipts (issue 11), on the simulator, and the
simulator behaving like a registered register: its taxation systems, the document size limit,
Atol's codes and texts.

Each new task also passes our own validator (``parse_task``/``to_driver_json``) first, the
way the engine sends it, so the models and the simulator agree on the fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kassa_appliance.fiscal.receipt import TaskValidationError, parse_task, to_driver_json
from kassa_appliance.registers.base import RegisterError
from kassa_appliance.registers.simulator import MOSCOW, SimulatorRegister, read_state
from kassa_appliance.registers.simulator_faults import Fault
from kassa_appliance.registers.simulator_size import MAX_RECEIPT_BYTES, receipt_size

START = datetime(2026, 11, 22, 9, 30, 15, tzinfo=MOSCOW)
OPERATOR = {"name": "Иванов И.И.", "vatin": "500100732259"}


class ManualClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def printed() -> list[str]:
    return []


@pytest.fixture
def register(tmp_path: Path, clock: ManualClock, printed: list[str]) -> Iterator[SimulatorRegister]:
    simulator = SimulatorRegister(tmp_path / "sim", clock=clock, tape=printed.append)
    simulator.open()
    simulator.process({"type": "openShift", "operator": OPERATOR})
    yield simulator
    simulator.close()


def run(register: SimulatorRegister, task: dict[str, Any]) -> dict[str, Any]:
    """Validate like the engine does, then run on the register."""
    return register.process(to_driver_json(parse_task(task)))


def position(name: str = "Чай", price: float = 100.0, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "position",
        "name": name,
        "price": price,
        "quantity": 1,
        "amount": price,
        "tax": {"type": "vat22"},
        "paymentMethod": "fullPayment",
        "paymentObject": "commodity",
    }
    item.update(extra)
    return item


def sell(*items: dict[str, Any], payments: list[dict[str, Any]] | None = None, **extra: Any) -> Any:
    items = items or (position(),)
    total = sum(item["amount"] for item in items)
    task = {
        "type": "sell",
        "operator": OPERATOR,
        "items": list(items),
        "payments": payments if payments is not None else [{"type": "cash", "sum": total}],
    }
    task.update(extra)
    return task


def refused(register: SimulatorRegister, task: dict[str, Any]) -> RegisterError:
    with pytest.raises(RegisterError) as caught:
        register.process(task)
    return caught.value


def fd_number(register: SimulatorRegister) -> int:
    state = read_state(register.state_dir)
    assert state is not None
    return state.fd_number


# -- the new tasks pass our validator ---------------------------------------------------------


@pytest.mark.parametrize(
    "task",
    [
        {"type": "getCashDrawerStatus"},
        {"type": "openCashDrawer"},
        {"type": "ofdExchangeStatus"},
        {"type": "ismExchangeStatus"},
        {"type": "getShiftTotals"},
        {"type": "getRegistrationInfo"},
        {"type": "printLastReceiptCopy"},
        {
            "type": "nonFiscal",
            "items": [{"type": "text", "text": "Спасибо!"}],
            "printFooter": False,
        },
        {"type": "pingIsm", "timeout": 5000},
        {"type": "cancelMarkingCodeValidation"},
        {"type": "clearMarkingCodeValidationResult"},
    ],
)
def test_each_new_task_is_accepted_by_the_validator_and_the_simulator(
    register: SimulatorRegister, task: dict[str, Any]
) -> None:
    if task["type"] == "printLastReceiptCopy":
        register.process(sell())
    result = run(register, task)
    assert isinstance(result, dict)


@pytest.mark.parametrize(
    ("task", "problem"),
    [
        ({"type": "pingIsm", "timeout": "5s"}, "timeout"),
        ({"type": "nonFiscal"}, "items: required field is missing"),
        ({"type": "nonFiscal", "items": "Спасибо"}, "items"),
        ({"type": "pingIsm", "timeout": -1}, "timeout"),
    ],
)
def test_malformed_service_tasks_are_refused_before_the_register(
    task: dict[str, Any], problem: str
) -> None:
    with pytest.raises(TaskValidationError) as caught:
        parse_task(task)
    assert any(problem in line for line in caught.value.problems), caught.value.problems


# -- cash drawer ------------------------------------------------------------------------------


def test_open_cash_drawer_opens_it_until_the_cashier_closes_it(
    register: SimulatorRegister, clock: ManualClock
) -> None:
    assert not run(register, {"type": "getCashDrawerStatus"})["cashDrawerStatus"][
        "cashDrawerOpened"
    ]
    assert run(register, {"type": "openCashDrawer"}) == {}
    status = run(register, {"type": "getCashDrawerStatus"})
    assert status["cashDrawerStatus"]["cashDrawerOpened"] is True
    assert register.process({"type": "getDeviceStatus"})["deviceStatus"]["cashDrawerOpened"]
    clock.now += timedelta(seconds=31)
    assert not run(register, {"type": "getCashDrawerStatus"})["cashDrawerStatus"][
        "cashDrawerOpened"
    ]


# -- printed documents without a fiscal document ----------------------------------------------


def test_print_last_receipt_copy_prints_a_copy_and_creates_no_document(
    register: SimulatorRegister, printed: list[str]
) -> None:
    fiscal = register.process(sell(position("Пирожок", 55.0)))["fiscalParams"]
    before = fd_number(register)
    printed.clear()
    assert run(register, {"type": "printLastReceiptCopy"}) == {}
    assert fd_number(register) == before == fiscal["fiscalDocumentNumber"]
    assert len(printed) == 1
    assert "КОПИЯ" in printed[0] and "Пирожок" in printed[0]


def test_print_last_receipt_copy_needs_paper_and_a_document(
    tmp_path: Path, register: SimulatorRegister
) -> None:
    fresh = SimulatorRegister(tmp_path / "fresh")
    fresh.open()
    try:
        error = refused(fresh, {"type": "printLastReceiptCopy"})
        assert error.code == 93 and error.description.startswith("Данные документа отсутствуют")
    finally:
        fresh.close()
    register.set_fault("no_paper", Fault())
    assert refused(register, {"type": "printLastReceiptCopy"}).code == 44


def test_non_fiscal_prints_text_and_barcodes_only(
    register: SimulatorRegister, printed: list[str]
) -> None:
    before = fd_number(register)
    printed.clear()
    task = {
        "type": "nonFiscal",
        "items": [
            {"type": "text", "text": "Заказ №4512 собран", "alignment": "center"},
            {"type": "barcode", "barcode": "4600000000008", "barcodeType": "EAN13"},
        ],
    }
    assert run(register, task) == {}
    assert fd_number(register) == before
    assert "Заказ №4512 собран" in printed[0] and "4600000000008" in printed[0]
    assert "НЕ ФИСКАЛЬНЫЙ" in printed[0]
    error = refused(register, {"type": "nonFiscal", "items": [{"type": "barcode"}]})
    assert (error.code, error.description) == (501, 'Поле "items[0].barcode" отсутствует')


# -- OFD exchange -----------------------------------------------------------------------------


def test_ofd_exchange_status_counts_unsent_documents_and_the_oldest_date(
    register: SimulatorRegister, clock: ManualClock
) -> None:
    assert run(register, {"type": "ofdExchangeStatus"})["status"]["notSentCount"] == 0
    register.set_fault("ofd_offline", Fault())
    first = register.process(sell())["fiscalParams"]
    clock.now += timedelta(hours=2)
    register.process(sell())
    status = run(register, {"type": "ofdExchangeStatus"})
    assert status["status"]["notSentCount"] == 2
    assert status["status"]["notSentFirstDocNumber"] == first["fiscalDocumentNumber"]
    assert status["status"]["notSentFirstDocDateTime"] == first["fiscalDocumentDateTime"]
    assert status["warnings"] == {"dataForSendIsEmpty": False}
    register.set_fault("ofd_offline", None)
    assert run(register, {"type": "ofdExchangeStatus"})["status"]["notSentCount"] == 0


# -- shift totals and registration ------------------------------------------------------------


def test_shift_totals_count_receipts_payments_and_cash(register: SimulatorRegister) -> None:
    register.process({"type": "cashIn", "cashSum": 500})
    register.process(sell(position(price=150.0), payments=[{"type": "cash", "sum": 200.0}]))
    register.process(sell(position(price=80.0), payments=[{"type": 1, "sum": 80.0}]))
    register.process({**sell(position(price=30.0)), "type": "sellReturn"})
    register.process({"type": "cashOut", "cashSum": 100})
    totals = run(register, {"type": "getShiftTotals"})["shiftTotals"]
    assert totals["receipts"]["sell"]["count"] == 2
    assert totals["receipts"]["sell"]["sum"] == 230.0
    assert totals["receipts"]["sell"]["payments"]["cash"] == 150.0
    assert totals["receipts"]["sell"]["payments"]["electronically"] == 80.0
    assert totals["receipts"]["sellReturn"] == {
        "count": 1,
        "sum": 30.0,
        "payments": {"cash": 30.0, "electronically": 0, "prepaid": 0, "credit": 0, "other": 0},
    }
    assert totals["income"] == {"sum": 500.0, "count": 1}
    assert totals["outcome"] == {"sum": 100.0, "count": 1}
    assert totals["cashDrawer"]["sum"] == 500 + 150 - 30 - 100
    assert totals["shiftNumber"] == 1


def test_registration_info_names_taxation_systems_inn_and_ffd(tmp_path: Path) -> None:
    simulator = SimulatorRegister(tmp_path / "usn", taxation_types=["usnIncome", "patent"])
    simulator.open()
    try:
        info = run(simulator, {"type": "getRegistrationInfo"})
    finally:
        simulator.close()
    assert info["organization"]["taxationTypes"] == ["usnIncome", "patent"]
    assert info["organization"]["vatin"] == "7700000009"
    assert info["device"]["ffdVersion"] == "1.2"
    assert info["device"]["defaultTaxationType"] == "usnIncome"
    assert info["device"]["registrationNumber"]


# -- a registered register ----------------------------------------------------------------------


def test_only_the_registered_taxation_systems_are_accepted(tmp_path: Path) -> None:
    simulator = SimulatorRegister(tmp_path / "usn", taxation_types=["usnIncome", "patent"])
    simulator.open()
    try:
        simulator.process({"type": "openShift"})
        before = fd_number(simulator)
        error = refused(simulator, sell(taxationType="osn"))
        assert error.code == 143 and error.description.startswith("Некорректная СНО")
        assert fd_number(simulator) == before
        simulator.process(sell(taxationType="patent"))
        simulator.process(sell())  # absent: the default taxation system of the registration
    finally:
        simulator.close()


def test_abolished_envd_is_not_registered_by_default(register: SimulatorRegister) -> None:
    assert refused(register, sell(taxationType="envd")).code == 143


def test_a_receipt_up_to_the_document_size_limit_is_accepted_beyond_it_refused(
    register: SimulatorRegister,
) -> None:
    many = sell(*(position(f"Товар номер {n}", 10.0) for n in range(150)))
    assert receipt_size(many) <= MAX_RECEIPT_BYTES
    assert register.process(many)["fiscalParams"]["total"] == 1500.0
    huge = sell(*(position(f"Товар с длинным названием {'x' * 90} {n}") for n in range(250)))
    size = receipt_size(huge)
    assert size > MAX_RECEIPT_BYTES
    before = fd_number(register)
    error = refused(register, huge)
    assert (error.code, error.description) == (
        501,
        f"Размер чека: {size} байт. Допустимый размер чека не более 32768 байт",
    )
    assert fd_number(register) == before


def test_the_driver_size_estimate_term_by_term() -> None:
    # myscripts_base_receipt.js getTaskSize for one cash position, no operator:
    # fixed tags 118 + not electronic 5 + items 4 + position 4 + name "Чай" (3+4)
    # + price 100 (10000 < 4**8: 2+4) + amount (2+4) + quantity 1 (1+3+4)
    # + paymentMethod 5 + paymentObject 5 + tax.type 5 + payments 20 + one sum (2+4-4)
    # + tags 1009/1187 (4+4) = 203; getCorrectedTaskSize: round(203 / 0.8) = 254.
    task = sell()
    del task["operator"]
    assert receipt_size(task) == 254


def test_non_cash_above_the_total_is_atols_own_code(register: SimulatorRegister) -> None:
    error = refused(register, sell(payments=[{"type": "electronically", "sum": 150.0}]))
    assert error.code == 52
    assert error.description.startswith("Сумма не наличных платежей превышает сумму чека")


def test_what_the_driver_accepts_the_simulator_accepts(register: SimulatorRegister) -> None:
    # A markup folded into the amount, a discount, JavaScript float noise, payment types by
    # number or digit string, a total rounded down by the receipt's kopecks.
    markup = position("Доставка", 100.0, amount=120.0)
    discount = position("Хлеб", 45.5, quantity=3, amount=120.0)
    noisy = position("Сыр", 436.79999999999995, amount=436.79999999999995)
    task = sell(
        markup,
        discount,
        noisy,
        payments=[{"type": "1", "sum": 100.0}, {"type": 0, "sum": 576.0}],
        total=676.0,
    )
    result = register.process(task)["fiscalParams"]
    assert result["total"] == 676.0


def test_the_simulator_and_the_validator_estimate_the_same_size() -> None:
    # Two independent readings of the driver's getTaskSize (fiscal/receipt_size.py for the
    # validator, registers/simulator_size.py for the device) must agree.
    from kassa_appliance.fiscal.receipt_size import document_size

    agent = {"agents": ["payingAgent"], "payingAgent": {"operation": "x", "phones": ["+7999"]}}
    tasks = [
        sell(),
        sell(*(position(f"Товар {n}", 10.0 + n) for n in range(300))),
        sell(
            position(agentInfo=agent, supplierInfo={"name": "А", "phones": ["+7916"]}),
            clientInfo={"emailOrPhone": "a@b.ru", "name": "Иванов"},
            electronically=True,
            taxationType="osn",
        ),
    ]
    for task in tasks:
        assert receipt_size(task) == document_size(task)
