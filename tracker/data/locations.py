"""Where the training datasets are on this machine: ``--data NAME=DIR`` arguments and/or a YAML paths file
(``{lasot: /data/lasot, got10k: /data/got10k}``), never code edits. Command-line entries win over the file."""

import os

import yaml

from mimtrack.errors import UserError

from .registry import check_source_name


def _check(name, path, origin):
    check_source_name(name, origin)
    path = os.path.expanduser(os.fspath(path))
    is_lmdb = name.endswith("-lmdb") or path.rstrip("/").endswith(".lmdb")
    if not (os.path.isfile(path) if is_lmdb else os.path.isdir(path)):
        raise UserError(f"{origin}: {name} location {path} not found")
    return path


def resolve_locations(data_args, paths_file):
    """``["lasot=/data/lasot", ...]`` and an optional YAML paths file -> ``{name: path}``, every path checked."""
    locations = {}
    if paths_file:
        if not os.path.isfile(paths_file):
            raise UserError(f"--paths {paths_file}: file not found")
        try:
            with open(paths_file, encoding="utf-8") as f:
                entries = yaml.safe_load(f) or {}
        except yaml.YAMLError as exc:
            raise UserError(f"--paths {paths_file}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
            raise UserError(f"--paths {paths_file}: expected a mapping 'name: folder' per line")
        for name, path in entries.items():
            locations[str(name)] = _check(str(name), path, f"--paths {paths_file}")
    for item in data_args or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--data {item!r}: expected NAME=DIR, e.g. lasot=/data/lasot")
        locations[name] = _check(name, path, f"--data {item}")
    return locations


def location_of(name, locations):
    """The location of a recipe's dataset, or a one-line error saying how to give it. A recipe's ``got10k`` is
    also found as ``--data got10k-lmdb=X.lmdb`` (and ``got10k-lmdb`` as ``got10k=X.lmdb``): one dataset, two
    storage forms."""
    check_source_name(name, in_recipe=True)
    other = name[:-5] if name.endswith("-lmdb") else f"{name}-lmdb"
    if name not in locations and other in locations:
        return locations[other]
    if name not in locations:
        raise UserError(f"the recipe trains on {name!r} but no location was given: add --data {name}=DIR "
                        f"or a '{name}: DIR' line to the --paths file")
    return locations[name]
