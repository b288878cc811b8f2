"""``mimtrack pack-lmdb``: a training dataset in one LMDB file (read back by :mod:`.lmdb_source`).

Records: ``__meta__`` (JSON: dataset, split, is_video, sequence names and lengths, image keys of image
datasets), ``__boxes__`` (float64 (F, 4) of all sequences, concatenated) and ``__visible__`` (uint8 (F,)); a
video frame is stored under ``<sequence index>/<frame index>``, an image under its path relative to the root
(once, however many annotations it has). Frames are the files' encoded bytes, unchanged, so training decodes the
same bytes from either form and the samples are identical. A frame missing on disk is left out and reads back
as missing: skipped and counted, as from the folder.

    mimtrack pack-lmdb --dataset lasot --root /data/lasot --split train --out lasot_train.lmdb
"""

import contextlib
import json
import os

import numpy as np

from mimtrack.errors import UserError
from mimtrack.fileio import disk_full, disk_full_error, no_space, replace_checked
from mimtrack.lmdbfile import open_lmdb_for_writing

from .lmdb_source import FORMAT
from .registry import DEFAULT_SPLITS, PACKABLE_NAMES, build_source

_COMMIT_BYTES = 256 << 20   # commit a write transaction about every 256 MB


def _needed_bytes(source, root):
    """About the bytes the LMDB of ``source`` takes: each frame in whole 4 KB pages, plus the annotations."""
    total, seen = 0, set()
    for index in range(len(source)):
        seq = source.sequence(index)
        total += 16 * len(seq.boxes) + 4096
        for path in seq.frames:
            if not source.is_video:
                if path in seen:
                    continue
                seen.add(path)
            try:
                total += -(-(os.path.getsize(path) + 64) // 4096) * 4096
            except (OSError, TypeError):
                pass
    return total + (1 << 16)


class _Writer:
    """Batched puts that grow the map when it is full."""

    def __init__(self, env):
        self.env, self.pending, self.size = env, [], 0

    def put(self, key, value):
        self.pending.append((key.encode(), value))
        self.size += len(value)
        if self.size > _COMMIT_BYTES:
            self.flush()

    def flush(self):
        import lmdb

        while True:
            try:
                with self.env.begin(write=True) as txn:
                    for key, value in self.pending:
                        txn.put(key, value)
                break
            except lmdb.MapFullError:
                self.env.set_mapsize(2 * self.env.info()["map_size"] + 2 * self.size)
        self.pending, self.size = [], 0


def pack_lmdb(source, out, root, split):
    """Write every sequence of ``source`` to the LMDB file ``out`` (atomically). Returns the missing frame count."""
    import lmdb

    out = os.fspath(out)
    directory = os.path.dirname(os.path.abspath(out))
    tmp = f"{out}.tmp-{os.getpid()}"
    # A full disk must be found before LMDB runs into it: its mapped pages past the end of a file that could not
    # grow end the process with a bus error, not an exception.
    if disk_full(directory, margin=_needed_bytes(source, root)):
        free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
        raise UserError(f"--out {out}: disk full: about {_needed_bytes(source, root) >> 20} MB needed, "
                        f"{free >> 20} MB free in {directory}")
    env = open_lmdb_for_writing(tmp)
    missing = 0
    try:
        writer = _Writer(env)
        names, lengths, boxes, visible, image_keys, stored = [], [], [], [], [], set()
        for index in range(len(source)):
            seq = source.sequence(index)
            names.append(seq.name)
            lengths.append(len(seq.boxes))
            boxes.append(np.asarray(seq.boxes, dtype=np.float64).reshape(-1, 4))
            visible.append(np.asarray(seq.visible, dtype=np.uint8))
            for k, path in enumerate(seq.frames):
                if source.is_video:
                    key = f"{index}/{k}"
                else:
                    key = os.path.relpath(path, root)
                    image_keys.append(key)
                    if key in stored:
                        continue
                    stored.add(key)
                data = source.read(path)
                if data is None:
                    missing += 1
                    continue
                writer.put(key, data)
        meta = {"format": FORMAT, "dataset": source.name, "split": split, "is_video": source.is_video,
                "names": names, "lengths": lengths, "image_keys": image_keys}
        writer.put("__boxes__", np.concatenate(boxes).tobytes())
        writer.put("__visible__", np.concatenate(visible).tobytes())
        writer.put("__meta__", json.dumps(meta).encode())
        writer.flush()
        env.sync(True)
        env.close()
        replace_checked(tmp, out)
    except BaseException as exc:
        full = isinstance(exc, (OSError, lmdb.Error)) and no_space(exc, directory)
        env.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if full:
            raise disk_full_error(out) from None
        if isinstance(exc, lmdb.Error):
            raise UserError(f"--out {out}: writing the LMDB failed ({str(exc).splitlines()[0]})") from None
        raise
    return missing


# ---------------------------------------------------------------- command line
def add_arguments(parser):
    parser.add_argument("--dataset", required=True, choices=PACKABLE_NAMES, help="the dataset family")
    parser.add_argument("--root", required=True, help="the dataset folder (official layout)")
    parser.add_argument("--split", default="", help="e.g. lasot train, got10k train_full, coco train2017")
    parser.add_argument("--out", required=True, help="the LMDB file to write (e.g. lasot_train.lmdb)")


def run(args):
    if os.path.isdir(args.out):
        raise UserError(f"--out {args.out}: is a folder; give a file path such as {args.dataset}.lmdb")
    source = build_source(args.dataset, args.root, args.split)
    split = args.split or DEFAULT_SPLITS[args.dataset]
    missing = pack_lmdb(source, args.out, args.root, split)
    frames = sum(len(source.sequence(i).boxes) for i in range(len(source)))
    print(f"{args.out}: {len(source)} {args.dataset} sequences, {frames} frames"
          + (f" ({missing} frame files missing, left out)" if missing else ""))
    return 0
