"""The one way to open an LMDB: what ``mimtrack pack-lmdb`` writes, and what training and pre-training read.

An LMDB is a single file (``X.lmdb``, what ``pack-lmdb`` writes) or a folder holding ``data.mdb`` (the layout of
other tools). Reading maps the file into memory, so a truncated copy would crash the reader with a bus error at
the first record past its end: :func:`open_lmdb` checks the size the header promises before any record is read.
"""

import os

from mimtrack.errors import UserError


def _data_file(path):
    return os.path.join(path, "data.mdb") if os.path.isdir(path) else path


_READERS = {}   # real path -> read-only environment: py-lmdb allows one open environment per file and process


def open_lmdb(path, what="LMDB"):
    """The read-only environment on ``path`` (file or ``data.mdb`` folder), its size checked against its header
    when first opened; one per file and process, shared by every reader (training sources, pre-training data).

    No lock file is used (the file is never written while read), so a read-only folder works. UserError, one line
    naming the file, for a missing, foreign, corrupt or truncated file. Callers keep no reference across a fork:
    the environments are closed before one (see below) and reopened on the next call.
    """
    key = os.path.realpath(path)
    if key not in _READERS:
        _READERS[key] = _open_checked(os.fspath(path), what)
    return _READERS[key]


def close_readers():
    # py-lmdb's "already open in this process" registry survives a fork, so a DataLoader worker could not open
    # a file its parent has open: close them all before forking (the parent reopens on its next read).
    for env in _READERS.values():
        env.close()
    _READERS.clear()


os.register_at_fork(before=close_readers)


def _open_checked(path, what):
    import lmdb

    data = _data_file(path)
    if not os.path.isfile(data):
        raise UserError(f"{path}: {what} not found")
    try:
        env = lmdb.open(path, subdir=os.path.isdir(path), readonly=True, lock=False, readahead=False, meminit=False)
        expected = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    except lmdb.Error as exc:
        raise UserError(f"{path}: not a readable {what} ({str(exc).splitlines()[0]})") from None
    actual = os.path.getsize(data)
    if actual < expected:
        env.close()
        raise UserError(f"{path}: truncated {what}: {actual} bytes, its header says {expected} "
                        f"(an interrupted copy or write?)")
    return env


def open_lmdb_for_writing(path):
    """A new LMDB file at ``path`` for one writer (no lock file left behind); UserError when it cannot be made."""
    import lmdb

    try:
        return lmdb.open(os.fspath(path), subdir=False, map_size=1 << 30, meminit=False, map_async=True, lock=False)
    except lmdb.Error as exc:
        raise UserError(f"{path}: cannot create the LMDB file ({str(exc).splitlines()[0]})") from None
