"""Numbers a study file wrote as text (`epochs: "3"`, or `lr: 1e-3`, which YAML 1.1 reads as a
string) taken as the numbers the trial's schema reads them as, so that two spellings of one
study are one study; and, for people, each text shown as the value it is read as."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def numbers_as_read(written: Any, read: Any) -> Any:
    """`written` (a trial section as the file gave it) with each text whose field `read` (the same
    section validated, as JSON) holds a number replaced by that number; everything else as written."""
    return _leaves_replaced(written, read, _number_as_read)


def values_as_read(written: Any, read: Any) -> Any:
    """`written` with each text whose field `read` holds a number, or true / false, shown as that
    value (`lr: '0.05'` as 0.05, `nesterov: 'yes'` as true): what the study resolves to, for people."""
    return _leaves_replaced(written, read, _value_as_read)


def _leaves_replaced(written: Any, read: Any, leaf: Callable[[Any, Any], Any]) -> Any:
    """`written` with each leaf replaced by `leaf(written, read)`, walking both trees alike."""
    if isinstance(written, dict) and isinstance(read, dict):
        return {
            key: _leaves_replaced(value, read[key], leaf) if key in read else value for key, value in written.items()
        }
    if isinstance(written, list) and isinstance(read, list) and len(written) == len(read):
        return [_leaves_replaced(item, value, leaf) for item, value in zip(written, read)]
    return leaf(written, read)


def _number_as_read(written: Any, read: Any) -> Any:
    if isinstance(written, str) and isinstance(read, int | float) and not isinstance(read, bool):
        return _as_written_unquoted(written, read)
    return written


def _value_as_read(written: Any, read: Any) -> Any:
    return read if isinstance(written, str) and isinstance(read, bool) else _number_as_read(written, read)


def _as_written_unquoted(text: str, number: int | float) -> int | float:
    """The number as YAML reads the text unquoted: `"50"` in a float field is 50, as `50` there is
    (the field's float 50.0 would hash as another study than `50`); `"1e-3"` is 0.001."""
    if isinstance(number, float) and number.is_integer():
        try:
            return int(text)
        except ValueError:
            return number
    return number
