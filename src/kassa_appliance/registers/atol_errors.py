"""Atol's error codes with the driver's constant names and Russian descriptions.

The codes and names are DTO10's ``LIBFPTR_ERROR_*`` constants (``libfptr10.py`` of DTO
10.10.8.0; ``tests/test_error_codes.py`` compares this table with them). The texts are what
``errorDescription()`` says for each code, as listed in ExLuzZziVo/KKTServiceLib
``KKTServiceLib.Atol/Types/Enums/KKTErrorType.cs``. The simulator answers with these texts so
that an integrator sees on it exactly what a real register would say; the engine never reads
the text, only the code (:func:`kassa_appliance.registers.base.categorize`).

The table holds the codes the appliance meets or models (connection, printer, shift, receipt,
FN, marking and JSON-task errors), not all of Atol's ~300.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kassa_appliance.registers.base import RegisterError


@dataclass(frozen=True)
class AtolError:
    """One ``LIBFPTR_ERROR_*`` constant: its name (without the prefix) and Atol's text."""

    name: str
    text: str

    @property
    def constant(self) -> str:
        """The name as ``libfptr10.py`` spells it."""
        return "LIBFPTR_OK" if self.name == "OK" else f"LIBFPTR_ERROR_{self.name}"


def _table(*rows: tuple[int, str, str]) -> Mapping[int, AtolError]:
    return {code: AtolError(name, text) for code, name, text in rows}


ATOL_ERRORS: Mapping[int, AtolError] = _table(
    (0, "OK", "Ошибок нет"),
    (1, "CONNECTION_DISABLED", "Соединение не установлено"),
    (2, "NO_CONNECTION", "Нет связи"),
    (3, "PORT_BUSY", "Порт занят"),
    (4, "PORT_NOT_AVAILABLE", "Порт недоступен"),
    (11, "NOT_SUPPORTED", "Не поддерживается в данной версии"),
    (12, "INVALID_MODE", "Не поддерживается в данном режиме"),
    (15, "UNKNOWN", "Неизвестная ошибка"),
    (16, "INVALID_SUM", "Неверная цена (сумма)"),
    (17, "INVALID_QUANTITY", "Неверное количество"),
    (
        36,
        "DATE_TIME_LESS_THAN_FS",
        "Переданные дата/время меньше даты/времени последнего фискального документа",
    ),
    (44, "NO_PAPER", "Нет бумаги"),
    (45, "COVER_OPENED", "Открыта крышка"),
    (46, "PRINTER_FAULT", "Нет связи с принтером чеков"),
    (47, "MECHANICAL_FAULT", "Механическая ошибка печатающего устройства"),
    (48, "INVALID_RECEIPT_TYPE", "Неверный тип чека"),
    (52, "NONCACH_PAYMENTS_TOO_MUCH", "Сумма не наличных платежей превышает сумму чека"),
    (55, "BUSY", "Предыдущая операция незавершена"),
    (60, "INVALID_PAYMENT_TYPE", "Неверный вид оплаты"),
    (66, "NOT_FULLY_PAID", "Чек оплачен не полностью"),
    (68, "SHIFT_EXPIRED", "Смена превысила 24 часа"),
    (73, "DENIED_IN_CLOSED_SHIFT", "Смена закрыта - операция невозможна"),
    (80, "NO_CASH", "В ККТ нет денег для выплаты"),
    (81, "DENIED_IN_CLOSED_RECEIPT", "Документ закрыт – операция невозможна"),
    (82, "DENIED_IN_OPENED_RECEIPT", "Чек открыт – операция невозможна"),
    (83, "DENIED_IN_OPENED_SHIFT", "Смена открыта, операция невозможна"),
    (93, "RECORD_NOT_FOUND_IN_JOURNAL", "Данные документа отсутствуют"),
    (110, "INVALID_POSITIONS_COUNT", "Недопустимое кол-во позиций в чеке"),
    (114, "PRINTER_OVERHEAT", "Перегрев головки принтера"),
    (115, "FN_EXCHANGE", "Ошибка обмена с ФН на уровне интерфейса I2C"),
    (116, "FN_INVALID_FORMAT", "Ошибка формата передачи ФН"),
    (117, "FN_INVALID_STATE", "Неверное состояние ФН"),
    (118, "FN_FAULT", "Неисправимая ошибка ФН"),
    (119, "FN_CRYPTO_FAULT", "Ошибка КС ФН"),
    (120, "FN_EXPIRED", "Закончен срок эксплуатации ФН"),
    (121, "FN_OVERFLOW", "Архив ФН переполнен"),
    (137, "FN_RESOURCE_HAS_EXPIRED", "Ресурс хранения ФД исчерпан"),
    (139, "FN_HAS_NOT_SEND_DOCUMENTS", "В ФН есть неотправленные ФД"),
    (140, "FN_TIMEOUT", "Исчерпан ресурс ожидания передачи сообщения в ФН"),
    (141, "FN_SHIFT_EXPIRED", "Продолжительность смены ФН более 24 часов"),
    (143, "INVALID_TAXATION_TYPE", "Некорректная СНО"),
    (144, "INVALID_TAX_TYPE", "Недопустимый номер ставки налога"),
    (150, "CUTTER_FAULT", "Ошибка отрезчика"),
    (166, "FN_NOT_FOUND", "ФН не найден"),
    (177, "CLOSE_RECEIPT_INTERRUPTED", "Закрытие чека прервано"),
    (178, "FN_QUERY_INTERRUPTED", "Получение документа из ФН прервано"),
    (189, "NO_LICENSE", "Подходящие лицензии не найдены"),
    (190, "INVALID_FFD_VERSION", "Неверная версия ФФД"),
    (203, "NEED_CANCEL_DOCUMENT", "Произошла критичная ошибка, документ необходимо отменить"),
    (227, "INVALID_TOTAL", "Неверный итог чека"),
    (241, "CONNECTION_LOST", "Соединение с ККТ потеряно"),
    (401, "MARKING_CODE_VALIDATION_IN_PROGRESS", "Процедура проверки КМ уже запущена"),
    (402, "NO_CONNECTION_WITH_SERVER", "Ошибка соединения с сервером"),
    (403, "MARKING_CODE_VALIDATION_CANCELED", "Процедура проверки КМ прервана"),
    (404, "INVALID_MARKING_CODE_STATUS", "Некорректное значение статуса КМ"),
    (405, "INVALID_GS1", "Неверный код GS1"),
    (406, "MARKING_WORK_DENIED", "Запрещена работа с маркированным товарами"),
    (408, "MARKS_OVERFLOW", "Переполнена таблица хранения КМ"),
    (409, "INVALID_MARKING_CODE", "Некорректный код маркировки"),
    (410, "INVALID_STATE", "Неверное состояние"),
    (411, "OFD_EXCHANGE", "Ошибка обмена с сервером ОФД или ИСМ"),
    (412, "INVALID_MEASUREMENT_UNIT", "Некорректное значение единиц измерения"),
    (413, "OPERATION_DENIED_IN_CURRENT_FFD", "Операция не разрешена в данной версии ФФД"),
    (416, "NO_MARKED_POSITION", "Нет маркированных позиций в чеке"),
    (420, "MARK_NOT_CHECKED", "КМ не проверен в ФН"),
    (421, "MARK_CHECK_TIMEOUT_EXPIRED", "Истёк таймаут проверки КМ"),
    (422, "NO_MARKING_CODE_IN_TABLE", "Данный КМ отсутствует в таблице"),
    (423, "CHEKING_MARK_IN_PROGRESS", "Выполняется проверка КМ"),
    (
        426,
        "PROPERTY_FOR_MARKING_POSITION_ONLY",
        "Данный реквизит разрешён только для маркированной позиции",
    ),
    (501, "RECEIPT_PARSE_ERROR", "Ошибка парсинга запроса"),
    (502, "INTERRUPTED_BY_PREVIOUS_ERRORS", "Выполнение прервано из-за предыдущих ошибок"),
    (503, "DRIVER_SCRIPT_ERROR", "Ошибка скрипта драйвера"),
    (504, "VALIDATE_FUNC_NOT_FOUND", "Функция проверки задания не найдена"),
)


def atol_text(code: int) -> str:
    """Atol's description of ``code`` (a generic one for codes outside the table)."""
    entry = ATOL_ERRORS.get(code)
    return entry.text if entry is not None else f"Ошибка ККТ {code}"


def atol_error(code: int, detail: str | None = None) -> RegisterError:
    """A RegisterError as the driver reports it: Atol's code and Atol's text.

    ``detail`` (what exactly was wrong) follows the text in parentheses, the way the
    driver's own JSON scripts add the field and value to their messages.
    """
    text = atol_text(code)
    return RegisterError(code, f"{text} ({detail})" if detail else text)
