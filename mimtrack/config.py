"""Typed configs: YAML recipes -> nested dataclasses, with ``--set key=value`` overrides.

Every package describes its settings as dataclasses (``mimtrack.tracker.config``,
``mimtrack.pretrain.config``); this module is the one loader for all of them:

    cfg = load_config(TrackerConfig, "vit_tiny_256_ce", kind="tracking", overrides=["inference.device=cuda"])

A recipe is a YAML file in ``experiments/<kind>/`` (named without ``.yaml``) or
any path. Unknown keys and values of the wrong type are errors naming the key.
"""

import dataclasses
import os
import re
import types
import typing
from importlib import resources

import yaml

from mimtrack.errors import UserError

# A number in exponent notation without a dot (``1e-4``, ``3E5``): YAML 1.2 floats that YAML 1.1 leaves as strings.
_YAML11_FLOAT = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)[eE][-+]?\d+")


def recipe_dir(kind):
    """The folder of the shipped recipes of one kind (tracking, pretrain, transfer)."""
    return resources.files("mimtrack.experiments").joinpath(kind)


def recipe_names(kind):
    """Names of the recipes shipped for ``kind``."""
    folder = recipe_dir(kind)
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def resolve_recipe(path_or_name, kind):
    """A recipe path, or the name of a shipped recipe, -> (display name, YAML text)."""
    text_path = os.fspath(path_or_name)
    if os.path.isfile(text_path):
        with open(text_path, encoding="utf-8") as f:
            return text_path, f.read()
    if text_path.endswith((".yaml", ".yml")) and (os.sep in text_path or "/" in text_path):
        raise UserError(f"config file not found: {text_path}")
    name = os.path.basename(text_path)
    name = name[:-5] if name.endswith(".yaml") else name
    candidate = recipe_dir(kind).joinpath(name + ".yaml")
    if candidate.is_file():
        return name, candidate.read_text(encoding="utf-8")
    known = ", ".join(recipe_names(kind)) or "none"
    raise UserError(f"unknown config {text_path!r}: not a file and not a shipped {kind} recipe ({known})")


def parse_overrides(overrides):
    """``["a.b=1", "c=[1, 2]"]`` -> nested dict; values are parsed as YAML scalars/lists."""
    tree = {}
    for item in overrides or []:
        if "=" not in item:
            raise UserError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = tree
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {item!r}: {part!r} is not a section")
        node[parts[-1]] = value
    return tree


def merge(base, update):
    """Recursive dict merge: ``update`` wins."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def from_dict(cls, data, where=""):
    """Build dataclass ``cls`` from a (nested) dict, checking keys and types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"config {where or 'root'}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        prefix = where + "." if where else ""
        raise UserError(f"config: unknown key {prefix}{unknown[0]} (known: {', '.join(sorted(fields))})")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints[name], value, f"{where}.{name}" if where else name)
    return cls(**kwargs)


def _convert(tp, value, where):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except UserError as exc:
                errors.append(str(exc))
        raise UserError(errors[0] if errors else f"config {where}: bad value {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config {where}: expected a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, where) for v in value)
        if origin is tuple and args:
            if len(args) != len(value):
                raise UserError(f"config {where}: expected {len(args)} values, got {value!r}")
            return tuple(_convert(a, v, where) for a, v in zip(args, value))
        inner = args[0] if args else typing.Any
        return [_convert(inner, v, where) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"config {where}: expected a mapping, got {value!r}")
        vt = args[1] if args else typing.Any
        return {k: _convert(vt, v, f"{where}.{k}") for k, v in value.items()}
    if tp is typing.Any:
        return value
    if tp is float:
        if isinstance(value, str) and _YAML11_FLOAT.fullmatch(value.strip()):
            value = float(value)   # YAML 1.1 (PyYAML) reads 1e-4, without a dot, as a string: take it as written
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"config {where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"config {where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise UserError(f"config {where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise UserError(f"config {where}: expected a string, got {value!r}")
        return value
    return value


def to_dict(obj):
    """Dataclass -> plain nested dict (for saving next to checkpoints)."""
    return dataclasses.asdict(obj)


def load_config(cls, path_or_name=None, kind="tracking", overrides=None, data=None):
    """Load a recipe (path or shipped name) or a dict into ``cls``, then apply ``--set`` overrides."""
    if data is None and path_or_name is not None:
        where, text = resolve_recipe(path_or_name, kind)
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" line {mark.line + 1}" if mark else ""
            raise UserError(f"config {where}{line}: not valid YAML") from None
        if not isinstance(data, dict):
            raise UserError(f"config {where}: the top level must be a mapping of sections (key: value), "
                            f"not a {type(data).__name__}")
    elif data is not None and not isinstance(data, dict):
        raise UserError(f"config: expected a mapping, got {type(data).__name__}")
    data = merge(data or {}, parse_overrides(overrides))
    return from_dict(cls, data)
