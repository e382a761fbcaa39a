"""The one exception type lmtool raises for bad input, so the CLI can print it as a single line."""


class LmtoolError(Exception):
    """A problem with the user's input or options: the message names the file and says what to do.

    The CLI prints ``lmtool: error: <message>`` on stderr and exits with status 1, without a
    traceback. Library callers can catch it like any exception.
    """

    exit_code = 1

    def __init__(self, message, path=None):
        self.message = message
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class LmtoolWarning(UserWarning):
    """Something lmtool decided on the user's behalf; the CLI prints it as one line on stderr."""


class Interrupted(LmtoolError):
    """Ctrl-C, after lmtool saved what can be resumed; exits with 130 like an interrupted shell command."""

    exit_code = 130
