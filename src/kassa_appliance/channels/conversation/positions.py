"""Receipt positions as people write them in a chat, read into name, quantity and price.

One line is one position::

    Замена смесителя 1500            name and price (quantity 1)
    доставка 300 р                   a currency mark after the price: р, р., руб, ₽
    Кран 2 х 350, Кран 2x350         quantity × price (x, х, ×, *)
    Фильтр 3 шт × 1 200,50 ₽         a unit after the quantity; thousands split by spaces
    Прокладка 2 шт по 99,90          quantity "по" price
    Кран 350 р × 2 шт                price × quantity, when the quantity carries its unit
    Лампа 60 Вт — 150                a dash or a colon ends the name (a name ending in digits)

A line with a quantity and a price but no name (``2 шт по 99,90``) takes its name from the
line just above it, when that line is a name alone (``Прокладка``). A message may hold
several lines. A line that cannot be read raises :class:`PositionError`: which line, what
was read, what was expected and an example, in Russian, for the chat. Nothing else is
raised for any text (``tests/test_conversation_positions.py`` checks it with hypothesis).
Money stays Decimal; the amount is price × quantity rounded half up to kopecks, as the
driver rounds it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from kassa_appliance.fiscal.receipt_limits import MAX_MONEY, MAX_NAME_LENGTH, MAX_QUANTITY

__all__ = [
    "MAX_LINES",
    "PositionError",
    "ReadPosition",
    "format_money",
    "format_position",
    "format_quantity",
    "parse_positions",
]

MAX_LINES = 50
"""Positions in one message; more is surely a paste by mistake."""
MAX_LINE_LENGTH = 300
_CENT = Decimal("0.01")
QUANTITY_PLACES = 3

UNITS: dict[str, str] = {
    "шт": "piece",
    "штук": "piece",
    "штука": "piece",
    "штуки": "piece",
    "ед": "piece",
    "усл": "piece",
    "кг": "kilogram",
    "г": "gram",
    "м": "meter",
    "м2": "squareMeter",
    "м²": "squareMeter",
    "кв.м": "squareMeter",
    "л": "liter",
    "ч": "hour",
    "час": "hour",
    "часа": "hour",
    "часов": "hour",
}
"""Units a quantity may carry → the FFD 1.2 measurement unit (tag 2108)."""
UNIT_SHOWN: dict[str, str] = {
    "piece": "шт",
    "kilogram": "кг",
    "gram": "г",
    "meter": "м",
    "squareMeter": "м²",
    "liter": "л",
    "hour": "ч",
}


@dataclass(frozen=True, slots=True)
class ReadPosition:
    name: str
    quantity: Decimal
    price: Decimal
    unit: str = "piece"
    """FFD 1.2 measurement unit name (``piece``, ``hour``, …)."""

    @property
    def amount(self) -> Decimal:
        return (self.price * self.quantity).quantize(_CENT, rounding=ROUND_HALF_UP)


class PositionError(ValueError):
    """A line that is not a position, said for the person who wrote it."""

    def __init__(self, line_number: int, line: str, read: str, expected: str, example: str):
        self.line_number = line_number
        self.line = line
        self.read = read
        self.expected = expected
        self.example = example
        printable = "".join(c if c.isprintable() else "�" for c in line)
        shown = printable if len(printable) <= 60 else printable[:59] + "…"
        super().__init__(
            f"Строка {line_number} «{shown}»: {read}. Ожидаю {expected}. Например: «{example}»."
        )


# --- the grammar -----------------------------------------------------------------------------

_SPACES = re.compile(r"[\s\u00a0\u2007\u202f]+")
_MONEY = r"(?:\d{1,3}(?: \d{3})+|\d+)(?:[.,]\d{1,2})?"
_QTY = r"\d+(?:[.,]\d+)?"
_CURRENCY = r"(?: ?(?:₽|руб(?:\.|лей|ля|ль)?|р\.?))?"
_UNIT_WORDS = r"шт\.?|штук[аи]?|ед\.?|усл\.?|кг|г|м2|м²|кв\.м|м|л|часов|часа|час|ч"
_UNIT = rf"(?: ?(?P<unit>{_UNIT_WORDS})(?=$|[ x×*хп]))"
_TIMES = r" ?[x×*х] ?"
_NAME_END = r"(?:\s*[:—–-]\s*|\s+)"

_PATTERNS = (
    # Кран 350 р × 2 шт — price first, the quantity marked by its unit at the end
    re.compile(
        rf"^(?P<name>.*?){_NAME_END}(?P<price>{_MONEY}){_CURRENCY}{_TIMES}(?P<qty>{_QTY}){_UNIT}\.?$",
        re.IGNORECASE,
    ),
    # Кран 2 х 350 / Кран 2x350 / Фильтр 3 шт × 1 200,50 ₽
    re.compile(
        rf"^(?P<name>.*?)(?:{_NAME_END}|^)(?P<qty>{_QTY}){_UNIT}?{_TIMES}(?P<price>{_MONEY}){_CURRENCY}$",
        re.IGNORECASE,
    ),
    # Прокладка 2 шт по 99,90 / 2 шт по 99,90
    re.compile(
        rf"^(?P<name>.*?)(?:{_NAME_END}|^)(?P<qty>{_QTY}){_UNIT}?"
        rf" по (?P<price>{_MONEY}){_CURRENCY}$",
        re.IGNORECASE,
    ),
    # Замена смесителя 1500 / доставка 300 р / 1500
    re.compile(rf"^(?P<name>.*?)(?:{_NAME_END}|^)(?P<price>{_MONEY}){_CURRENCY}$", re.IGNORECASE),
)
_DIGIT_TAIL = re.compile(r"\d")
_EXAMPLE = "Замена смесителя 1500"
_EXAMPLE_QTY = "Кран 2 х 350"


def _clean(line: str) -> str:
    return _SPACES.sub(" ", line).strip()


def _number(text: str) -> Decimal:
    return Decimal(text.replace(" ", "").replace(",", "."))


def _refused_character(text: str) -> str | None:
    for char in text:
        if unicodedata.category(char) in {"Cc", "Cf", "Cs", "Co", "Cn"}:
            return char
    return None


def parse_positions(text: str) -> list[ReadPosition]:
    """Every position in ``text`` (one per non-empty line). Raises :class:`PositionError`
    for the first line that cannot be read, or when there is no position at all."""
    lines = [(number, _clean(raw)) for number, raw in enumerate(text.splitlines(), 1)]
    lines = [(number, line) for number, line in lines if line]
    if not lines:
        raise PositionError(
            1, "", "сообщение пустое", "название и цену, каждую позицию с новой строки", _EXAMPLE
        )
    if len(lines) > MAX_LINES:
        raise PositionError(
            lines[MAX_LINES][0],
            lines[MAX_LINES][1],
            f"в сообщении {len(lines)} строк",
            f"не больше {MAX_LINES} позиций в одном сообщении",
            _EXAMPLE,
        )
    positions: list[ReadPosition] = []
    pending: tuple[int, str] | None = None
    for number, line in lines:
        read = _read_line(number, line)
        if isinstance(read, str):  # a name alone: the next line may give its numbers
            if pending is not None:
                raise _no_price(*pending)
            pending = (number, read)
            continue
        name, quantity, price, unit = read
        if not name:
            if pending is None:
                raise PositionError(
                    number,
                    line,
                    "нет названия",
                    "название перед количеством и ценой (или строкой выше)",
                    "Прокладка 2 шт по 99,90",
                )
            name = pending[1]
        elif pending is not None:
            raise _no_price(*pending)
        pending = None
        positions.append(_checked(number, line, name, quantity, price, unit))
    if pending is not None:
        raise _no_price(*pending)
    return positions


def _no_price(number: int, line: str) -> PositionError:
    return PositionError(
        number, line, "не нашёл цену", "название и цену в конце строки", f"{line[:40]} 1500"
    )


def _read_line(number: int, line: str) -> tuple[str, str, str, str | None] | str:
    if len(line) > MAX_LINE_LENGTH:
        raise PositionError(
            number,
            line,
            f"строка длиной {len(line)} символов",
            f"не больше {MAX_LINE_LENGTH} символов в строке",
            _EXAMPLE,
        )
    bad = _refused_character(line)
    if bad is not None:
        raise PositionError(
            number, line, f"невидимый символ U+{ord(bad):04X}", "обычный текст", _EXAMPLE
        )
    for pattern in _PATTERNS:
        match = pattern.match(line)
        if match is None:
            continue
        name = line[: match.end("name")].rstrip(" :—–-").strip()
        groups = match.groupdict()
        unit = groups.get("unit")
        return name, groups.get("qty") or "1", match.group("price"), unit.lower() if unit else None
    if not _DIGIT_TAIL.search(line):
        return line.rstrip(" :—–-")
    raise PositionError(
        number,
        line,
        "не понял количество и цену",
        "название, затем цену или «количество х цена»",
        _EXAMPLE_QTY,
    )


def _checked(
    number: int, line: str, name: str, quantity_text: str, price_text: str, unit_text: str | None
) -> ReadPosition:
    try:
        quantity = _number(quantity_text)
        price = _number(price_text)
    except InvalidOperation:  # the grammar only lets digits through; kept for safety
        raise PositionError(number, line, "не понял число", "цифры", _EXAMPLE) from None
    if len(name) > MAX_NAME_LENGTH:
        raise PositionError(
            number,
            line,
            f"название длиной {len(name)} символов",
            f"не больше {MAX_NAME_LENGTH} символов в названии",
            _EXAMPLE,
        )
    if quantity <= 0:
        raise PositionError(number, line, "количество 0", "количество больше нуля", _EXAMPLE_QTY)
    if quantity != quantity.quantize(Decimal(1).scaleb(-QUANTITY_PLACES)):
        raise PositionError(
            number,
            line,
            f"количество {quantity_text}",
            f"не больше {QUANTITY_PLACES} знаков после запятой",
            "Кабель 2,5 м х 120",
        )
    if quantity > MAX_QUANTITY:
        raise PositionError(
            number, line, f"количество {quantity_text}", f"не больше {MAX_QUANTITY}", _EXAMPLE_QTY
        )
    if price <= 0:
        raise PositionError(number, line, "цена 0", "цену больше нуля", _EXAMPLE)
    unit = UNITS.get((unit_text or "шт").rstrip("."), "piece")
    position = ReadPosition(name, quantity, price.quantize(_CENT), unit)
    if position.amount > MAX_MONEY:
        raise PositionError(
            number,
            line,
            f"сумма {format_money(position.amount)}",
            f"сумму позиции не больше {format_money(MAX_MONEY)}",
            _EXAMPLE,
        )
    return position


# --- writing positions back --------------------------------------------------------------------


def format_money(amount: Decimal) -> str:
    """``1 200,50 ₽``: kopecks always, thousands split by a narrow no-break space."""
    whole, _, cents = f"{amount.quantize(_CENT):f}".partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    return "\u202f".join(groups) + f",{cents} ₽"


def format_quantity(quantity: Decimal) -> str:
    text = f"{quantity.normalize():f}"
    return text.replace(".", ",")


def format_position(position: ReadPosition) -> str:
    """One line the parser reads back as the same position:
    ``Кран — 2 шт × 350,00 ₽ = 700,00 ₽`` without the ``= …`` part."""
    unit = UNIT_SHOWN.get(position.unit, "шт")
    return (
        f"{position.name} — {format_quantity(position.quantity)} {unit}"
        f" × {format_money(position.price)}"
    )
