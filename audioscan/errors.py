"""The one base class of every error a user can fix.

Each package raises its own kind (``StoreError``, ``MediaError``, ``ModelError``,
``QueryError``), all derived from :class:`UserError`; the CLI turns any of them into
one sentence and exit status 1 in one place, the page into an HTTP status chosen by
``kind``, and the Python API lets them through for notebooks to catch.

Messages name the options a user can change by their API keyword in backticks
(```window` 0.5 is too short``).  Nothing below the CLI knows its flags: ``str(err)``
reads ``window 0.5 is too short`` in a notebook, and the CLI renders the same error as
``--window 0.5 is too short`` through :meth:`UserError.render`.
"""

from __future__ import annotations

import re
from typing import Callable

_OPTION = re.compile(r"`([a-z][a-z0-9_]*)`")


class UserError(Exception):
    """Something the user asked cannot be done as asked; the message says what to do instead.

    ``kind`` says what went wrong for front-ends that answer by type (the page's HTTP
    status): ``invalid`` input, something ``not_found``, or the store ``busy`` with a writer.
    ``value`` is the offending value when there is one.
    """

    kind = "invalid"

    def __init__(self, message: str, *, value: object = None) -> None:
        super().__init__(message)
        self.template = message
        self.value = value

    @property
    def options(self) -> tuple[str, ...]:
        """The API keywords the message names, in order."""
        return tuple(dict.fromkeys(_OPTION.findall(self.template)))

    def render(self, option_name: Callable[[str], str] = lambda keyword: keyword) -> str:
        """The message with each named option spelled by ``option_name`` (the CLI: its flag)."""
        return _OPTION.sub(lambda found: option_name(found.group(1)), self.template)

    def __str__(self) -> str:
        return self.render()


class NotFoundError(UserError):
    """What was named (a file, a set, a detector, a label) is not there."""

    kind = "not_found"


class BusyError(UserError):
    """The store is held by another writer; the same request can succeed later."""

    kind = "busy"


class TooLargeError(UserError):
    """What was given is larger than this program takes (an hours-long query clip, say)."""

    kind = "too_large"
