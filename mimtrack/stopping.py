"""Stopping a training loop cleanly: SIGINT / SIGTERM become a flag the loop polls (a checkpoint, then exit
130 / 143), and DataLoader workers leave the stopping to the main process."""

import signal
import threading

from mimtrack.errors import Stopped


def worker_ignores_stop_signals(_worker_id=None):
    """DataLoader ``worker_init_fn``: workers ignore SIGINT / SIGTERM and leave stopping to the main process.

    ``timeout``, a terminal's Ctrl-C and job schedulers signal the whole process group; a worker killed by SIGTERM
    makes torch raise "DataLoader worker ... is killed by signal" in the main process while it writes its stop
    checkpoint, a traceback instead of a clean exit. The main process's :class:`StopSignals` saves and returns; the
    workers end when their loader is shut down (or when they see the main process gone)."""
    for sig in StopSignals.SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


class StopSignals:
    """Context manager turning SIGINT / SIGTERM into a flag the training loop polls.

        with StopSignals() as stop:
            for step in ...:
                ...
                if stop.requested:
                    save a checkpoint; break

    After its checkpoint the loop calls :meth:`raise_if_signalled`: a stopped run is not a finished one, and the
    ``mimtrack`` command exits 130 (SIGINT) / 143 (SIGTERM). A second signal while the flag is already set raises
    :class:`~mimtrack.errors.Stopped` at once (the user insists). Outside the main thread signals cannot be
    caught, so the manager is inert there. ``trigger()`` sets the flag by hand (tests; no exit status).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self.signal_name = None
        self.signum = None
        self._previous = {}

    def trigger(self, name="manual"):
        self.requested = True
        self.signal_name = name

    def _handle(self, signum, frame):
        if self.requested:
            raise Stopped(signum, f"second {signal.Signals(signum).name}: stopping now")
        self.trigger(signal.Signals(signum).name)
        self.signum = signum

    def raise_if_signalled(self):
        """Raise :class:`~mimtrack.errors.Stopped` when a signal (not ``trigger()``) set the flag."""
        if self.signum is not None:
            raise Stopped(self.signum)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        return False
