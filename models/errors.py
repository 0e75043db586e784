"""The one exception type models raise for things a user can fix."""

from audioscan.errors import UserError


class ModelError(UserError):
    """A model cannot be used as asked (unknown name, missing weights, bad device).

    The message is one sentence a user can act on; the CLI prints it without a traceback.
    """
