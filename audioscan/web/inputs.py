"""What a request may carry, checked before a route uses it.

Every value from a request is a stranger's: a body may be a list, a string, null or
a hundred thousand nested brackets; a number may be ``"nan"`` or ``1e999``; a flag may
be the string ``"false"``.  Each route declares its fields here, and anything that does
not fit is :class:`BadInput` - one sentence, answered with 400 - never a 500 and never
a silently wrong value (``"false"`` is not true).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

from starlette.requests import Request

from audioscan.api import UserError
from audioscan.api.labels import check_label_name, refused_character
from audioscan.api.moments import MomentFilter

# A JSON body larger than this is not anything the page sends (the export of a long list is ~100 kB).
MAX_JSON_BYTES = 2 << 20
MAX_TEXT = 200  # a label or detector name, a folder path


class BadInput(ValueError):
    """A request that does not fit its route; the message says which field and why."""


class NotIndexed(LookupError):
    """A request naming media the store does not index (404).  Its own class, so that a bug's
    ``KeyError`` or ``ValueError`` stays a 500 with its traceback in the log, never bad input."""


@dataclass(frozen=True)
class Number:
    low: float = -math.inf
    high: float = math.inf
    whole: bool = False

    def check(self, name: str, value: Any) -> float | int:
        if isinstance(value, str):
            try:
                value = float(value) if value.strip() else None
            except ValueError:
                value = None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise BadInput(f"'{name}' must be a finite number")
        if self.whole and value != int(value):
            raise BadInput(f"'{name}' must be a whole number")
        if not self.low <= value <= self.high:
            raise BadInput(f"'{name}' must lie between {self.low:g} and {self.high:g}")
        return int(value) if self.whole else float(value)


@dataclass(frozen=True)
class Text:
    longest: int = MAX_TEXT

    def check(self, name: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise BadInput(f"'{name}' must be a non-empty text")
        if len(value) > self.longest:
            raise BadInput(f"'{name}' is longer than {self.longest} characters")
        refused = refused_character(value)
        if refused is not None:
            raise BadInput(f"'{name}' holds {refused}; names may not hold control characters, format characters "
                           "or line separators")
        return value.strip()


@dataclass(frozen=True)
class LabelName(Text):
    """A label's name: the same rule as every other way a label enters (``labels add``, imports)."""

    def check(self, name: str, value: Any) -> str:
        text = super().check(name, value)
        try:
            check_label_name(text)
        except UserError as err:
            raise BadInput(str(err)) from None
        return text


@dataclass(frozen=True)
class Flag:
    def check(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise BadInput(f"'{name}' must be true or false")
        return value


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]

    def check(self, name: str, value: Any) -> str:
        if value not in self.options:
            raise BadInput(f"'{name}' must be one of {', '.join(self.options)}")
        return value


@dataclass(frozen=True)
class Items:
    """A list of objects, each with its own fields."""

    fields: Mapping[str, tuple[Any, bool]]
    longest: int = 10_000

    def check(self, name: str, value: Any) -> list[dict]:
        if not isinstance(value, list):
            raise BadInput(f"'{name}' must be a list")
        if len(value) > self.longest:
            raise BadInput(f"'{name}' holds more than {self.longest} items")
        return [fields_of(item, self.fields, where=f"{name}[{number}]") for number, item in enumerate(value)]


def fields_of(data: Any, fields: Mapping[str, tuple[Any, bool]], *, where: str = "the body") -> dict:
    """The declared ``fields`` (name -> (kind, required)) of ``data``, checked; others are ignored."""
    if not isinstance(data, dict):
        raise BadInput(f"{where} must be a JSON object")
    out: dict[str, Any] = {}
    for name, (kind, required) in fields.items():
        value = data.get(name)
        if value is None:
            if required:
                raise BadInput(f"{where} needs '{name}'")
            out[name] = None
            continue
        out[name] = kind.check(name, value)
    return out


async def json_fields(request: Request, fields: Mapping[str, tuple[Any, bool]]) -> dict:
    """The request's JSON body, bounded in size and depth, checked against ``fields``."""
    body = await request.body()
    if len(body) > MAX_JSON_BYTES:
        raise BadInput(f"the body is larger than {MAX_JSON_BYTES >> 20} MB")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadInput("the body is not valid JSON (or nests too deep)") from None
    return fields_of(data, fields)


def query_fields(request: Request, fields: Mapping[str, tuple[Any, bool]]) -> dict:
    """The query string's parameters, checked against ``fields`` (numbers given as text)."""
    return fields_of(dict(request.query_params), fields, where="the query")


# The page's filter fields (one site, one path glob): the moments of search and detections they keep.
FILTER_FIELDS: dict[str, tuple[Text | Number, bool]] = {
    **{name: (Text(), False) for name in ("site", "after", "before", "hours", "path")},
    "channel": (Number(1, 255, whole=True), False)}


def moment_filter(fields: Mapping[str, Any]) -> MomentFilter:
    """The filter the page's fields say (see ``FILTER_FIELDS``), as every command takes it."""
    return MomentFilter.parse(sites=[fields["site"]] if fields.get("site") else [], after=fields.get("after"),
                              before=fields.get("before"), hours=fields.get("hours"),
                              paths=[fields["path"]] if fields.get("path") else [],
                              channels=[fields["channel"]] if fields.get("channel") else [])
