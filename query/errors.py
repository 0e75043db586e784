"""The exceptions the query layer raises for things a user can fix."""

from audioscan.errors import NotFoundError, UserError


class QueryError(UserError):
    """A query cannot run as asked (bad time range, unknown file, no audio in the clip...)."""


class QueryNotFoundError(QueryError, NotFoundError):
    """A named media file, label or detector is not in the store."""
