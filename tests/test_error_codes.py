"""Our Atol error code table against the driver's own constants.

``tests/data/libfptr10_error_codes.json`` holds the names and numbers of the ``LIBFPTR_OK`` /
``LIBFPTR_ERROR_*`` constants of ``libfptr10.py`` (DTO 10.10.8.0, the copy in
galeksandrp/komtet-kassa-linux, see the file's ``source``). Every code we name — the
constants in ``registers/base.py`` and every row of ``registers/atol_errors.py`` — must be the
driver's number for that name, and must carry Atol's Russian text (ExLuzZziVo/KKTServiceLib
``KKTErrorType``), which the simulator answers with.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kassa_appliance.registers import base
from kassa_appliance.registers.atol_errors import ATOL_ERRORS, atol_error, atol_text

DATA = Path(__file__).parent / "data" / "libfptr10_error_codes.json"
LIBFPTR: dict[str, int] = json.loads(DATA.read_text(encoding="utf-8"))["constants"]

# Module-level names in base.py that are not Atol error codes.
NOT_ERROR_CODES = {"JsonDict"}
CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def base_error_constants() -> dict[str, int]:
    return {
        name: value
        for name, value in vars(base).items()
        if name.isupper() and isinstance(value, int) and name not in NOT_ERROR_CODES
    }


def test_the_reference_data_is_the_driver_table() -> None:
    # Spot checks against atol-notes §1.6, so a damaged data file cannot pass silently.
    assert LIBFPTR["LIBFPTR_OK"] == 0
    assert LIBFPTR["LIBFPTR_ERROR_NO_PAPER"] == 44
    assert LIBFPTR["LIBFPTR_ERROR_CLOSE_RECEIPT_INTERRUPTED"] == 177
    assert LIBFPTR["LIBFPTR_ERROR_CONNECTION_LOST"] == 241
    assert LIBFPTR["LIBFPTR_ERROR_INVALID_MARKING_CODE"] == 409
    assert LIBFPTR["LIBFPTR_ERROR_RECEIPT_PARSE_ERROR"] == 501
    assert len(LIBFPTR) > 300


@pytest.mark.parametrize(("name", "code"), sorted(base_error_constants().items()))
def test_every_code_in_base_is_the_drivers_number_for_its_name(name: str, code: int) -> None:
    assert LIBFPTR.get(f"LIBFPTR_ERROR_{name}") == code, (
        f"registers/base.py {name} = {code}, libfptr10.py has "
        f"{LIBFPTR.get(f'LIBFPTR_ERROR_{name}')}"
    )


@pytest.mark.parametrize("code", sorted(base_error_constants().values()))
def test_every_code_in_base_has_atols_russian_text(code: int) -> None:
    assert code in ATOL_ERRORS
    assert CYRILLIC.search(ATOL_ERRORS[code].text)


@pytest.mark.parametrize("code", sorted(ATOL_ERRORS))
def test_every_row_of_the_table_matches_the_driver(code: int) -> None:
    entry = ATOL_ERRORS[code]
    assert LIBFPTR.get(entry.constant) == code, f"{entry.constant}: table {code}"
    assert CYRILLIC.search(entry.text), f"{entry.constant}: no Russian text"


def test_errors_carry_the_atol_text_and_the_detail() -> None:
    error = atol_error(base.NOT_FULLY_PAID, "оплачено 10.00, итог 20.00")
    assert error.code == 66
    assert error.description == "Чек оплачен не полностью (оплачено 10.00, итог 20.00)"
    assert atol_error(base.NO_PAPER).description == "Нет бумаги"
    assert atol_text(9999) == "Ошибка ККТ 9999"
