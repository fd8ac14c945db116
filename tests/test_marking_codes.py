"""The FFD 1.2 marking-code check flow on the simulator and through every backend, and the sell
of a marked position refused when its code was not checked in the FN (Atol error 420)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backends import BackendStack, start_fptr10_stack, start_webrequests_stack
from kassa_appliance.appliance.config import Config, RegisterConfig
from kassa_appliance.fiscal.receipt import TaskValidationError, parse_task, to_driver_json
from kassa_appliance.registers.base import Register, RegisterError
from kassa_appliance.registers.factory import make_register
from kassa_appliance.registers.simulator import SimulatorRegister
from kassa_appliance.registers.simulator_faults import Fault, set_fault

GOOD_CODE = base64.b64encode(b"010460742875987521Abc123\x1d91EE06\x1d92abcd").decode()
BAD_CODE = base64.b64encode(b"not-a-datamatrix-code").decode()
OPERATOR = {"name": "Иванов И.И.", "vatin": "500100732259"}


def begin(code: str = GOOD_CODE) -> dict[str, Any]:
    return {
        "type": "beginMarkingCodeValidation",
        "params": {
            "imcType": "auto",
            "imc": code,
            "itemEstimatedStatus": "itemPieceSold",
            "imcModeProcessing": 0,
        },
    }


def marked_sell(code: str = GOOD_CODE, **extra: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "type": "sell",
        "operator": OPERATOR,
        "items": [
            {
                "type": "position",
                "name": "Молоко 3,2% 1 л",
                "price": 99.9,
                "quantity": 1,
                "amount": 99.9,
                "tax": {"type": "vat10"},
                "paymentMethod": "fullPayment",
                "paymentObject": "commodityWithMarking",
                "measurementUnit": "piece",
                "imcParams": {
                    "imcType": "auto",
                    "imc": code,
                    "itemEstimatedStatus": "itemPieceSold",
                    "imcModeProcessing": 0,
                },
            }
        ],
        "payments": [{"type": "cash", "sum": 99.9}],
    }
    task.update(extra)
    return task


def run(register: Register, task: dict[str, Any]) -> dict[str, Any]:
    return register.process(to_driver_json(parse_task(task)))


@pytest.fixture
def register(tmp_path: Path) -> Iterator[SimulatorRegister]:
    simulator = SimulatorRegister(tmp_path / "sim")
    simulator.open()
    simulator.process({"type": "openShift", "operator": OPERATOR})
    yield simulator
    simulator.close()


def test_a_marked_position_whose_code_was_not_checked_is_refused(
    register: SimulatorRegister,
) -> None:
    with pytest.raises(RegisterError) as caught:
        register.process(marked_sell())
    assert caught.value.code == 420
    assert caught.value.description.startswith("КМ не проверен в ФН")


def test_check_accept_sell_the_full_flow(register: SimulatorRegister) -> None:
    offline = run(register, begin())["offlineValidation"]
    assert offline == {"fmCheck": True, "fmCheckResult": True, "fmCheckErrorReason": "checked"}
    status = run(register, {"type": "getMarkingCodeValidationStatus"})
    assert status["ready"] is True and status["sentImcRequest"] is True
    assert status["driverError"]["code"] == 0
    check = status["onlineValidation"]["itemInfoCheckResult"]
    assert all(check[key] for key in ("imcCheckFlag", "imcCheckResult", "imcStatusInfo"))
    accepted = run(register, {"type": "acceptMarkingCode"})
    assert accepted["itemInfoCheckResult"]["imcEstimatedStatusCorrect"] is True
    assert run(register, marked_sell())["fiscalParams"]["total"] == 99.9
    # The FN used the code: the next receipt with it needs a new check.
    with pytest.raises(RegisterError) as caught:
        register.process(marked_sell())
    assert caught.value.code == 420
    assert run(register, {"type": "ismExchangeStatus"})["status"]["notSentCount"] == 0


def test_a_second_check_before_the_first_is_finished_is_refused(
    register: SimulatorRegister,
) -> None:
    run(register, begin())
    with pytest.raises(RegisterError) as caught:
        register.process(begin())
    assert (caught.value.code, caught.value.description) == (
        401,
        "Процедура проверки КМ уже запущена",
    )
    assert run(register, {"type": "cancelMarkingCodeValidation"}) == {}
    run(register, begin())


def test_a_declined_or_cleared_code_cannot_be_sold(register: SimulatorRegister) -> None:
    run(register, begin(BAD_CODE))
    status = run(register, {"type": "getMarkingCodeValidationStatus"})
    assert status["onlineValidation"]["itemInfoCheckResult"]["imcCheckResult"] is False
    assert status["onlineValidation"]["markOperatorResponseResult"] == "incorrect"
    assert run(register, {"type": "declineMarkingCode"}) == {}
    with pytest.raises(RegisterError):
        register.process(marked_sell(BAD_CODE))
    run(register, begin())
    run(register, {"type": "acceptMarkingCode"})
    assert run(register, {"type": "clearMarkingCodeValidationResult"}) == {}
    with pytest.raises(RegisterError) as caught:
        register.process(marked_sell())
    assert caught.value.code == 420


def test_accept_without_a_check_is_an_invalid_state(register: SimulatorRegister) -> None:
    with pytest.raises(RegisterError) as caught:
        register.process({"type": "acceptMarkingCode"})
    assert caught.value.code == 410
    status = run(register, {"type": "getMarkingCodeValidationStatus"})
    assert status["driverError"]["code"] == 410
    assert status["driverError"]["error"] == "imcCheckWrongState"


def test_validate_marking_codes_lets_the_driver_check_them_in_the_sell(
    register: SimulatorRegister,
) -> None:
    assert "fiscalParams" in run(register, marked_sell(validateMarkingCodes=True))
    with pytest.raises(RegisterError) as caught:
        register.process(marked_sell(BAD_CODE, validateMarkingCodes=True))
    assert caught.value.code == 409


def test_ping_ism_and_the_ism_link_going_down(register: SimulatorRegister) -> None:
    assert run(register, {"type": "pingIsm"}) == {"ready": True, "time": 120}
    register.set_fault("ism_offline", Fault())
    assert run(register, {"type": "pingIsm"})["driverError"]["code"] == 402
    run(register, begin())
    status = run(register, {"type": "getMarkingCodeValidationStatus"})
    assert status["sentImcRequest"] is False and status["driverError"]["code"] == 402
    run(register, {"type": "acceptMarkingCode"})
    run(register, marked_sell())
    ism = run(register, {"type": "ismExchangeStatus"})["status"]
    assert ism["notSentCount"] == 1
    register.set_fault("ism_offline", None)
    assert run(register, {"type": "ismExchangeStatus"})["status"]["notSentCount"] == 0


def test_malformed_marking_tasks_are_refused_by_the_validator() -> None:
    with pytest.raises(TaskValidationError) as caught:
        parse_task({"type": "beginMarkingCodeValidation", "params": {"imc": "%%%"}})
    problems = caught.value.problems
    assert any(line.startswith("params.imc: is not base64") for line in problems), problems
    assert any("params.itemEstimatedStatus" in line for line in problems), problems


# -- through the fptr10 ABI path and Web Requests ---------------------------------------------

STARTERS: dict[str, Callable[[Path], BackendStack]] = {
    "fptr10": start_fptr10_stack,
    "webrequests": start_webrequests_stack,
}


@pytest.mark.parametrize("backend", sorted(STARTERS))
def test_the_new_tasks_run_through_every_backend(backend: str, tmp_path: Path) -> None:
    stack = STARTERS[backend](tmp_path)
    try:
        config = Config(register=RegisterConfig(**stack.register_config))
        register = make_register(config.register, tmp_path / "data")
        register.open()
        try:
            register.process({"type": "openShift", "operator": OPERATOR}, request_id="shift")
            with pytest.raises(RegisterError) as caught:
                register.process(to_driver_json(parse_task(marked_sell())), request_id="s1")
            assert caught.value.code == 420
            assert run(register, begin())["offlineValidation"]["fmCheckResult"] is True
            assert run(register, {"type": "getMarkingCodeValidationStatus"})["ready"] is True
            run(register, {"type": "acceptMarkingCode"})
            sold = register.process(to_driver_json(parse_task(marked_sell())), request_id="s2")
            assert sold["fiscalParams"]["total"] == 99.9
            set_fault(stack.simulator_state_dir, "ofd_offline", Fault())
            register.process(to_driver_json(parse_task(marked_sell(validateMarkingCodes=True))))
            # The link sends a document with the task after it: the last sell before the
            # link went down and the one after it both wait.
            assert run(register, {"type": "ofdExchangeStatus"})["status"]["notSentCount"] == 2
            totals = run(register, {"type": "getShiftTotals"})["shiftTotals"]
            assert totals["receipts"]["sell"]["count"] == 2
            info = run(register, {"type": "getRegistrationInfo"})
            assert "usnIncome" in info["organization"]["taxationTypes"]
            assert run(register, {"type": "openCashDrawer"}) == {}
            assert run(register, {"type": "getCashDrawerStatus"})["cashDrawerStatus"][
                "cashDrawerOpened"
            ]
            assert run(register, {"type": "printLastReceiptCopy"}) == {}
            text = {"type": "nonFiscal", "items": [{"type": "text", "text": "Спасибо!"}]}
            assert run(register, text) == {}
            assert run(register, {"type": "pingIsm"})["ready"] is True
            with pytest.raises(RegisterError) as caught:
                register.process(
                    {
                        **marked_sell(validateMarkingCodes=True),
                        "payments": [{"type": "electronically", "sum": 200.0}],
                    }
                )
            assert caught.value.code == 52
        finally:
            register.close()
    finally:
        stack.cleanup()
