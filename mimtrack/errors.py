"""The one exception type for problems with the user's input."""


class UserError(Exception):
    """Bad input: a file, an argument or data that cannot be used as given.

    The message must be one line naming the file, sequence or argument and
    what is wrong with it. The ``mimtrack`` command prints it without a
    traceback (unless ``--debug``) and exits with status 2.
    """


class Stopped(KeyboardInterrupt):
    """A command stopped by a signal (SIGINT: Ctrl-C, SIGTERM: kill, a job scheduler) after saving what it could.

    The ``mimtrack`` command exits with ``128 + signal number``, as a shell reports a process a signal ended:
    130 for SIGINT, 143 for SIGTERM. A KeyboardInterrupt (Python's own SIGINT) exits 130 too.
    """

    def __init__(self, signum, message=""):
        import signal

        self.signum = int(signum)
        super().__init__(message or f"stopped by {signal.Signals(self.signum).name}")

    @property
    def exit_status(self):
        return 128 + self.signum
