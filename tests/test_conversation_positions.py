"""Positions as people write them: examples, the errors a person sees, and properties
(generated positions read back the same in every written form; no text makes the parser
raise anything but its own error)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kassa_appliance.channels.conversation.positions import (
    PositionError,
    ReadPosition,
    format_money,
    format_position,
    format_quantity,
    parse_positions,
)


def read(text: str) -> list[tuple[str, str, str, str]]:
    return [(p.name, str(p.quantity), str(p.price), p.unit) for p in parse_positions(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Замена смесителя 1500", ("Замена смесителя", "1", "1500.00", "piece")),
        ("Кран 2 х 350", ("Кран", "2", "350.00", "piece")),
        ("Кран 2x350", ("Кран", "2", "350.00", "piece")),
        ("Кран 2 × 350", ("Кран", "2", "350.00", "piece")),
        ("Кран 2*350", ("Кран", "2", "350.00", "piece")),
        ("доставка 300 р", ("доставка", "1", "300.00", "piece")),
        ("доставка 300р.", ("доставка", "1", "300.00", "piece")),
        ("Доставка 300 руб.", ("Доставка", "1", "300.00", "piece")),
        ("Доставка 300₽", ("Доставка", "1", "300.00", "piece")),
        ("Прокладка 2 шт по 99,90", ("Прокладка", "2", "99.90", "piece")),
        ("Фильтр 3 шт × 1 200,50 ₽", ("Фильтр", "3", "1200.50", "piece")),
        ("Фильтр 3 шт × 1\u00a0200,50 ₽", ("Фильтр", "3", "1200.50", "piece")),
        ("Кран 350 р × 2 шт", ("Кран", "2", "350.00", "piece")),
        ("Лампа 60 Вт — 150", ("Лампа 60 Вт", "1", "150.00", "piece")),
        ("Кабель 2,5 м х 120", ("Кабель", "2.5", "120.00", "meter")),
        ("Работа 1,5 ч х 1000", ("Работа", "1.5", "1000.00", "hour")),
        ("Выезд мастера: 1500.00", ("Выезд мастера", "1", "1500.00", "piece")),
        ("ЗАМЕНА КРАНА 2 ШТ ПО 700", ("ЗАМЕНА КРАНА", "2", "700.00", "piece")),
    ],
)
def test_a_line_as_people_write_it(text: str, expected: tuple[str, str, str, str]) -> None:
    assert read(text) == [expected]


def test_several_lines_and_a_name_on_the_line_above() -> None:
    text = "Замена смесителя 1500\n\n  Кран 2 х 350  \nПрокладка\n2 шт по 99,90\nдоставка 300 р"
    assert [p[0] for p in read(text)] == ["Замена смесителя", "Кран", "Прокладка", "доставка"]
    assert sum((p.amount for p in parse_positions(text)), Decimal(0)) == Decimal("2699.80")


def test_the_amount_is_rounded_half_up_to_kopecks() -> None:
    [position] = parse_positions("Провод 0,333 м х 10,05")
    assert position.amount == Decimal("3.35")  # 3.34665


@pytest.mark.parametrize(
    ("text", "line", "read_part"),
    [
        ("", 1, "сообщение пустое"),
        ("2 шт по 99,90", 1, "нет названия"),
        ("Привет", 1, "не нашёл цену"),
        ("Кран 1500\nФильтр пара штук", 2, "не нашёл цену"),
        ("Кран 2 шт", 1, "не понял количество и цену"),
        ("Кран 0", 1, "цена 0"),
        ("Кран 0 х 100", 1, "количество 0"),
        ("Кран 1,2345 х 100", 1, "количество 1,2345"),
        ("Кран 100000 х 1", 1, "количество 100000"),
        ("Кран 99999 х 999999999", 1, "сумма"),
        ("Прокладка\nКран", 1, "не нашёл цену"),
        ("К" * 129 + " 100", 1, "название длиной 129"),
        ("Кран\u200b 100", 1, "невидимый символ U+200B"),
    ],
)
def test_a_line_that_cannot_be_read_says_what_was_read_and_what_was_expected(
    text: str, line: int, read_part: str
) -> None:
    with pytest.raises(PositionError) as caught:
        parse_positions(text)
    error = caught.value
    assert error.line_number == line and read_part in error.read
    message = str(error)
    assert message.startswith(f"Строка {line}") and "Ожидаю" in message and "Например" in message
    assert error.example and parse_positions(error.example)  # the example itself reads


def test_too_many_lines_are_refused() -> None:
    with pytest.raises(PositionError, match="не больше 50 позиций"):
        parse_positions("\n".join(f"Кран {n + 1}" for n in range(51)))


_LETTERS = "абвгдеёжзийклмнопрстуфцчшщъыьэюяАБВГДЕЖЗИКЛМНОПРСТУФЦЧШЩЭЮЯabcdefghijklmnoqrstuvwyz"
names = st.lists(st.text(_LETTERS, min_size=1, max_size=12), min_size=1, max_size=5).map(" ".join)
quantities = st.decimals(
    min_value=Decimal("0.001"), max_value=Decimal("99999"), places=3, allow_nan=False
).map(lambda q: q.normalize())
prices = st.decimals(
    min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2, allow_nan=False
)
units = st.sampled_from(["piece", "kilogram", "meter", "liter", "hour"])


@st.composite
def positions(draw: st.DrawFn) -> ReadPosition:
    return ReadPosition(draw(names), draw(quantities), draw(prices), draw(units))


def _written(position: ReadPosition, style: int) -> str:
    quantity = format_quantity(position.quantity)
    price = format_money(position.price).removesuffix(" ₽")
    plain_price = f"{position.price:f}"
    return [
        format_position(position),
        f"{position.name} {quantity} х {price}",
        f"{position.name} {quantity}x{plain_price}",
        f"{position.name} {quantity} шт по {price} р",
        f"{position.name}\n{quantity} × {price} ₽",
    ][style]


@settings(max_examples=300, deadline=None)
@given(st.lists(positions(), min_size=1, max_size=6), st.data())
def test_written_positions_read_back_the_same(
    generated: list[ReadPosition], data: st.DataObject
) -> None:
    lines = []
    for position in generated:
        style = data.draw(st.integers(0, 4))
        if position.unit != "piece":
            style = 0  # only the canonical form writes the unit
        lines.append(_written(position, style))
    parsed = parse_positions("\n".join(lines))
    assert [(p.name, p.quantity, p.price, p.unit) for p in parsed] == [
        (p.name, p.quantity, p.price, p.unit) for p in generated
    ]


@settings(max_examples=1500, deadline=None)
@given(st.text(max_size=200))
def test_no_text_raises_anything_but_a_position_error(text: str) -> None:
    try:
        result = parse_positions(text)
    except PositionError as error:
        assert str(error).startswith("Строка ")
    else:
        assert all(p.quantity > 0 and p.price > 0 and p.name for p in result)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["Кран", " ", "2", "х", "x", "×", "шт", "по", "1 200", ",50", "₽", "р", "\n", "—", ":"]
        ),
        max_size=30,
    ).map("".join)
)
def test_near_miss_texts_raise_only_a_position_error(text: str) -> None:
    try:
        parse_positions(text)
    except PositionError:
        pass
