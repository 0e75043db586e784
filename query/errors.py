"""The exception the query layer raises for things a user can fix."""

from audioscan.errors import UserError


class QueryError(UserError):
    """A query cannot run as asked (bad time range, unknown file, no audio in the clip...)."""
