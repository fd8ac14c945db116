"""A job that was not printed, explained in plain Russian with what to change.

The codes are those the fiscal core and the Bitrix24 link write into a job's ERROR:
``invalid-task`` (fiscal/receipt validation), ``atol-<N>`` (the register's own code,
registers/atol_errors.py), ``internal-error``, ``cancelled``, ``creator-not-allowed``,
``invalid-reply``. Codes the engine waits on (no paper, cover open, closed shift…) never
end a job, so they are here only for completeness of what a kassa may say.
"""

from __future__ import annotations

import re

from kassa_appliance.registers.atol_errors import atol_text

__all__ = ["explain_refusal"]

_FN = (
    "фискальный накопитель кассы не работает ({text}) — позвоните в офис; пока его не"
    " заменят, пробейте чек на другой кассе"
)
ATOL_ADVICE: dict[int, str] = {
    16: "касса не приняла цену или сумму — проверьте цены позиций и пробейте чек заново",
    17: "касса не приняла количество — проверьте количество в позициях",
    44: "на кассе кончилась бумага — попросите офис вставить рулон",
    45: "на кассе открыта крышка — попросите офис закрыть её",
    52: "безналичная оплата больше суммы чека — пробейте чек заново",
    60: "касса не принимает этот вид оплаты — выберите другой в «Изменить» → «Оплата»",
    66: "чек оплачен не полностью — пробейте его заново",
    80: (
        "в кассе нет столько наличных для возврата — верните деньги безналичными"
        " («Изменить» → «Оплата») или попросите офис внести наличные"
    ),
    110: "в чеке слишком много позиций для этой кассы — разбейте его на два чека",
    118: _FN,
    120: _FN,
    121: _FN,
    137: _FN,
    166: _FN,
    143: (
        "касса зарегистрирована с другой системой налогообложения — попросите"
        " администратора поправить настройку бота taxation-type"
    ),
    144: (
        "касса не знает ставку НДС из настроек бота — попросите администратора поправить"
        " настройку vat"
    ),
    190: "касса работает по другой версии ФФД — попросите администратора проверить кассу",
    227: "итог чека не сходится с позициями — пробейте чек заново",
    501: "касса не поняла чек — перешлите это сообщение администратору",
}
CODE_ADVICE: dict[str, str] = {
    "cancelled": "чек отменили в Битрикс24 до печати — деньги по нему не проведены",
    "creator-not-allowed": (
        "касса не принимает чеки от пользователя, под которым работает бот — попросите"
        " администратора добавить его в bitrix.allowed-users"
    ),
    "internal-error": (
        "на кассе произошёл сбой — чек не пробит; пробейте его ещё раз, а если сбой"
        " повторится, сообщите администратору"
    ),
    "invalid-reply": "касса не поняла, куда отвечать — сообщите администратору",
    "cancel-refused": "чек уже на кассе, отменить его было нельзя — дождитесь результата",
}
FIELD_WORDS: tuple[tuple[str, str], ...] = (
    (r"^items\[(\d+)\]\.name", "название позиции {n}"),
    (r"^items\[(\d+)\]\.price", "цена позиции {n}"),
    (r"^items\[(\d+)\]\.quantity", "количество в позиции {n}"),
    (r"^items\[(\d+)\]", "позиция {n}"),
    (r"^clientInfo\.emailOrPhone", "e-mail или телефон покупателя"),
    (r"^operator\.vatin", "ИНН кассира в настройках бота"),
    (r"^operator\.name", "имя кассира в настройках бота"),
    (r"^paymentsPlace", "место расчётов"),
    (r"^paymentsAddress", "адрес расчётов в настройках бота"),
    (r"^payments", "оплата"),
    (r"^total", "итог чека"),
)


def _field(message: str) -> str | None:
    for pattern, words in FIELD_WORDS:
        match = re.match(pattern, message)
        if match:
            number = int(match.group(1)) + 1 if match.groups() else 0
            return words.format(n=number)
    return None


def explain_refusal(code: str | None, message: str | None) -> str:
    """Why the receipt was not printed and what to change, one or two sentences."""
    code = code or ""
    detail = (message or "").strip()
    if code.startswith("atol-") and code[5:].isdigit():
        number = int(code[5:])
        advice = ATOL_ADVICE.get(number)
        text = atol_text(number)
        if advice is None:
            return f"касса ответила «{text}» (код {number}) — перешлите это сообщение в офис"
        return advice.format(text=text)
    if code == "invalid-task":
        body = detail.removeprefix("invalid task: ").strip()
        where = _field(body.lstrip("- ").strip())
        if where:
            return f"в чеке ошибка: {where} — исправьте и пробейте чек заново ({body[:200]})"
        return f"касса не приняла чек ({body[:200]}) — исправьте его и пробейте заново"
    advice = CODE_ADVICE.get(code)
    if advice is not None:
        return advice
    shown = f" ({detail[:200]})" if detail else ""
    return f"чек не пробит{shown} — перешлите это сообщение администратору"
