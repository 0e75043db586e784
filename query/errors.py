"""The exceptions the query layer raises for things a user can fix, and how they quote input."""

from audioscan.errors import NotFoundError, TooLargeError, UserError


class QueryError(UserError):
    """A query cannot run as asked (bad time range, unknown file, no audio in the clip...)."""


class QueryNotFoundError(QueryError, NotFoundError):
    """A named media file, label or detector is not in the store."""


class QueryTooLargeError(QueryError, TooLargeError):
    """A query clip longer than a query should be."""


def quoted(text: object, longest: int = 40) -> str:
    """``text`` as a sentence quotes it: in quotes, one line, cut to ``longest`` characters (a
    140 kB cell or a 5,000-digit number is named, not echoed)."""
    shown = " ".join(str(text).split())
    return repr(shown if len(shown) <= longest else shown[: longest - 3] + "...")
