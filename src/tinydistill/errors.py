"""The one exception type users see: a message that says what to fix."""


class TinyDistillError(Exception):
    """A user-facing error. The CLI prints its message on one line and exits non-zero (no traceback)."""
