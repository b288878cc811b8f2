"""Worker processes that never outlive the command that started them.

A worker started with ``spawn`` (or a forked pool worker) keeps running when its parent is killed (SIGKILL, OOM
killer): it finishes its task, then waits forever for a parent that is gone. :func:`die_with_parent`, run first
in the worker (the pool's initializer), ends it as soon as the parent dies.
"""

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid, poll_seconds=1.0):
    """End this process when ``parent_pid`` (the process that started it) dies.

    Linux: the kernel sends SIGKILL on the parent's death (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread
    polls the parent pid. Either way the check below catches a parent that died before this call. SIGTERM gets
    its default action back: a forked worker inherits the command's SIGTERM handler (raise Stopped), and a pool
    ends its workers with SIGTERM, which should end them quietly, not print a traceback each.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    armed = False
    if sys.platform.startswith("linux"):
        try:
            # The running program's symbols (libc's among them): find_library("c") runs ldconfig, 0.1 s per worker.
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent_pid:   # the parent is already gone (we were re-parented)
        os._exit(1)
    if not armed:
        def watch():
            while os.getppid() == parent_pid:
                time.sleep(poll_seconds)
            os._exit(1)

        threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def terminate_pool(pool):
    """Stop a ``concurrent.futures.ProcessPoolExecutor`` now: its workers are killed, not waited for (``shutdown``
    waits until every running task has finished: minutes for a tracking job). Uses the executor's process table,
    the one handle on its workers that it has."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def start_worker(parent_pid, initializer, *args):
    """A pool ``initializer`` that first ties the worker to its parent, then runs ``initializer(*args)``.

    ``initializer`` is named ``"package.module:function"``: a function object would be unpickled, its module (and
    torch with it: seconds, minutes on a loaded machine) imported, before this could run, and a parent killed
    meanwhile would leave the worker behind.
    """
    import importlib

    die_with_parent(parent_pid)
    module, _, name = initializer.partition(":")
    getattr(importlib.import_module(module), name)(*args)
