"""One base class for what the user got wrong: the plugin and the CLI turn it into one line and a
usage exit code. Any other exception is a bug in quantgate (or a library) and keeps its traceback."""


class QuantgateUsageError(Exception):
    """Bad input (an option, a path, a file's format); the message says what to do instead."""
