"""The one exception type a user should ever see: a clear message, no traceback."""


class LeanmlError(Exception):
    """A problem with the user's input or environment, explained in one message."""
