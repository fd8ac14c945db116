"""PHP-style nested query strings (``FILTER[NAME]=x&SELECT[]=ID``).

Bitrix24 ``batch`` commands are ``"method?query"`` strings in this encoding (PHP's
``http_build_query``), and form-encoded requests use it too. :func:`build_query` is what the
client sends; :func:`parse_query` is what the emulator reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

_KEY_PART = re.compile(r"\[([^\]]*)\]")


def _scalar(value: Any) -> str:
    if value is True:
        return "1"
    if value is False or value is None:
        return ""
    return str(value)


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}[{key}]" if prefix else str(key), item, out)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _flatten(f"{prefix}[{index}]", item, out)
    else:
        out.append((prefix, _scalar(value)))


def build_query(params: Mapping[str, Any]) -> str:
    """Encode nested dicts/lists the way PHP's ``http_build_query`` does."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        _flatten(str(key), value, pairs)
    return "&".join(f"{quote(k, safe='[]')}={quote(v, safe='')}" for k, v in pairs)


def _insert(target: dict[str, Any], parts: list[str], value: str) -> None:
    node = target
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        key = part if part != "" else str(len(node))
        if last:
            node[key] = value
        else:
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child


def _listify(value: Any) -> Any:
    """Turn dicts whose keys are exactly 0..n-1 into lists, recursively (PHP arrays)."""
    if isinstance(value, dict):
        converted = {key: _listify(item) for key, item in value.items()}
        if converted and all(key.isdigit() for key in converted):
            keys = sorted(converted, key=int)
            if [int(key) for key in keys] == list(range(len(keys))):
                return [converted[key] for key in keys]
        return converted
    return value


def parse_query(query: str) -> dict[str, Any]:
    """Decode a PHP-style query string into nested dicts and lists."""
    result: dict[str, Any] = {}
    for raw_key, value in parse_qsl(query, keep_blank_values=True):
        bracket = raw_key.find("[")
        if bracket <= 0:
            result[raw_key] = value
            continue
        parts = [raw_key[:bracket], *_KEY_PART.findall(raw_key[bracket:])]
        _insert(result, parts, value)
    return {key: _listify(value) for key, value in result.items()}
