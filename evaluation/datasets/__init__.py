"""Readers of the official on-disk layouts of the tracking benchmarks.

``load_dataset('lasot', root)`` returns the :class:`~evaluation.sequence.Sequence` objects of
the sequences present under ``root``, in the split's order. Only annotation files are read:
frames are listed lazily, so a root holding only the annotations evaluates fine.
"""

import os

from mimtrack.errors import UserError

from .got10k import GOT10k
from .lasot import LaSOT, LaSOTExtension
from .nfs import NfS
from .otb import OTB
from .tnl2k import TNL2K
from .trackingnet import TrackingNet
from .uav import UAV
from .vot import VOT

_BENCHMARKS = {b.name: b for b in (LaSOT(), LaSOTExtension(), GOT10k(), TrackingNet(), OTB(),
                                   UAV("uav123", "UAV123"), UAV("uav20l", "UAV20L"), NfS(), TNL2K(), VOT())}


def dataset_names():
    return list(_BENCHMARKS)


def _benchmark(name):
    if name not in _BENCHMARKS:
        raise UserError(f"unknown dataset {name!r} (known: {', '.join(_BENCHMARKS)})")
    return _BENCHMARKS[name]


def _split(benchmark, split):
    split = benchmark.default_split if split is None else split
    accepts = getattr(benchmark, "accepts", lambda s: s in benchmark.splits)
    if not accepts(split):
        raise UserError(f"{benchmark.name}: unknown split {split!r} (known: {', '.join(benchmark.splits)})")
    return split


def _check_root(root, name):
    if not os.path.isdir(root):
        raise UserError(f"{root}: {name} root folder not found")


def default_split(name):
    return _benchmark(name).default_split


def split_names(name, split=None, root=None):
    """All sequence names of a split: the packaged official list where the benchmark has one,
    otherwise (TrackingNet, NfS, TNL2K) the sequences present under ``root``."""
    benchmark = _benchmark(name)
    split = _split(benchmark, split)
    names = benchmark.official_names(split)
    if names is not None:
        return names
    if root is None:
        raise UserError(f"{name}: no packaged sequence list for split {split!r}; give the dataset root")
    _check_root(root, name)
    return benchmark.present_names(root, split)


def load_dataset(name, root, split=None, sequences=None):
    """Load the sequences of ``split`` present under ``root`` (only ``sequences`` when given)."""
    return load_sequences(name, root, split, present_names(name, root, split, sequences))


def load_sequences(name, root, split, names):
    """Load the named sequences (a part of :func:`present_names`), in the order given."""
    benchmark = _benchmark(name)
    split = _split(benchmark, split)
    root = os.fspath(root)
    return [benchmark.load(root, split, n) for n in names]


def present_names(name, root, split=None, sequences=None):
    """The names :func:`load_dataset` loads, in its order, without reading any annotation."""
    benchmark = _benchmark(name)
    split = _split(benchmark, split)
    root = os.fspath(root)
    _check_root(root, name)
    names = benchmark.present_names(root, split)
    if sequences is not None:
        wanted = set(sequences)
        unknown = sorted(wanted.difference(names))
        if unknown:
            raise UserError(f"{name} {split}: sequence(s) not found under {root}: {', '.join(unknown)}")
        names = [n for n in names if n in wanted]
    if not names:
        raise UserError(f"{root}: no {name} {split} sequences found")
    return names
