"""Errors that explain themselves: the CLI prints their message as one paragraph, no traceback."""


class SslnbError(Exception):
    """A mistake the user can fix; the message says which file, key or path, and how."""


class ParamsError(SslnbError):
    """A params file or override is invalid."""


class DataError(SslnbError):
    """A dataset is missing, empty or unreadable."""


class RunError(SslnbError):
    """A run directory or checkpoint is in a state the command cannot use."""
