"""Atomic file writes: a reader never sees a half-written output file.

Every output goes through :func:`atomic_write` (or :func:`replace_checked` for files another library writes, such
as OpenCV's videos): a temporary file beside the target, renamed onto it only once it was written completely.
A failed write leaves the previous file as it was and is reported in one line naming the file, "disk full" when
that is the reason.
"""

import contextlib
import errno
import os
import tempfile

from mimtrack.errors import UserError

NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# Free space below which a failed write is put down to a full disk: writers that do not report ENOSPC themselves
# (torch.save's zip writer, OpenCV's video writer) fail within their last buffer of the end of the disk.
FULL_DISK_MARGIN = 1 << 20


def check_output_path(path, option):
    """UserError now, before any work, when ``path`` cannot be an output file (an existing folder)."""
    if os.path.isdir(path):
        raise UserError(f"{option} {path}: is a folder; give a file name")


def disk_full(directory, margin=FULL_DISK_MARGIN):
    """True when the file system of ``directory`` has less than ``margin`` bytes left for this user."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < margin


def no_space(exc, directory):
    """True when the failed write ``exc`` is down to a full disk under ``directory``."""
    return getattr(exc, "errno", None) in NO_SPACE_ERRNOS or disk_full(directory)


def disk_full_error(path):
    directory = os.path.dirname(os.path.abspath(path))
    return UserError(f"{path}: cannot write it: disk full (no space left on device in {directory})")


def temp_path_beside(path, suffix=None):
    """A new empty temporary file in ``path``'s folder (created, so the name is ours): its path."""
    path = os.fspath(path)
    check_output_path(path, "output")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix if suffix is not None else "-" + os.path.basename(path),
                               dir=directory)
    os.close(fd)
    return tmp


def replace_checked(tmp, path):
    """Give ``tmp`` the mode a plain open() would (mkstemp makes 0600) and rename it onto ``path``."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_write(path, mode="w", encoding=None):
    """Open a temporary file beside ``path``; rename it onto ``path`` on success.

    If the block raises, the temporary file is removed and ``path`` is left as it was (absent or with its
    previous content); a write that failed for lack of space becomes a one-line UserError naming ``path``.
    """
    path = os.fspath(path)
    tmp = temp_path_beside(path)
    try:
        if "b" in mode:
            f = open(tmp, mode)
        else:
            f = open(tmp, mode, encoding=encoding or "utf-8")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        replace_checked(tmp, path)
    except (OSError, RuntimeError) as exc:
        full = no_space(exc, os.path.dirname(tmp))   # before removing tmp: that frees the space again
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if full:
            raise disk_full_error(path) from None
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path, text):
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path, "w") as f:
        f.write(text)


def cache_dir(*parts):
    """Where generated assets (the demo clip, exported ONNX graphs) are kept: ``$MIMTRACK_CACHE``, else
    ``$XDG_CACHE_HOME/mimtrack``, else ``~/.cache/mimtrack``; joined with ``parts``."""
    import pathlib

    root = os.environ.get("MIMTRACK_CACHE")
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mimtrack")
    return pathlib.Path(root, *parts)
