"""The one base class of every error a user can fix.

Each package raises its own kind (``StoreError``, ``MediaError``, ``ModelError``,
``QueryError``), all derived from :class:`UserError`; the CLI turns any of them into
one sentence and exit status 1 in one place, and the Python API lets them through
for notebooks to catch.
"""


class UserError(Exception):
    """Something the user asked cannot be done as asked; the message says what to do instead."""
