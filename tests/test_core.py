"""The shared plumbing: config loading, atomic writes, the CLI dispatcher."""

import dataclasses
import os

import pytest

from mimtrack import cli
from mimtrack.config import load_config, parse_overrides
from mimtrack.errors import UserError
from mimtrack.fileio import atomic_write


@dataclasses.dataclass
class Inner:
    size: int = 1
    ratios: list[float] = dataclasses.field(default_factory=lambda: [0.5])


@dataclasses.dataclass
class Outer:
    name: str = "x"
    scale: float = 1.0
    path: str | None = None
    inner: Inner = dataclasses.field(default_factory=Inner)


def test_config_from_yaml_and_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: base\ninner:\n  size: 3\n")
    cfg = load_config(Outer, str(recipe), overrides=["inner.ratios=[0.7, 1]", "scale=2", "path=/data"])
    assert cfg == Outer(name="base", scale=2.0, path="/data", inner=Inner(size=3, ratios=[0.7, 1.0]))
    assert isinstance(cfg.scale, float) and isinstance(cfg.inner.ratios[1], float)


def test_exponent_numbers_without_a_dot_are_numbers(tmp_path):
    # PyYAML (YAML 1.1) reads 1e-4 as the string '1e-4'; a float field takes it as the number it is
    recipe = tmp_path / "r.yaml"
    recipe.write_text("scale: 1e-4\ninner:\n  ratios: [2E3, .5e1]\n")
    cfg = load_config(Outer, str(recipe), overrides=["path=1e-4"])
    assert cfg.scale == 1e-4 and cfg.inner.ratios == [2000.0, 5.0]
    assert cfg.path == "1e-4"   # a string field keeps the text
    with pytest.raises(UserError, match="scale: expected a number, got '1e-4x'"):
        load_config(Outer, data={}, overrides=["scale=1e-4x"])


@pytest.mark.parametrize("overrides, message", [
    (["inner.sise=3"], "unknown key inner.sise"),
    (["inner.size=abc"], "inner.size: expected an integer"),
    (["scale=true"], "scale: expected a number"),
    (["novalue"], "expected key=value"),
])
def test_config_errors_name_the_key(overrides, message):
    with pytest.raises(UserError, match=message):
        load_config(Outer, data={}, overrides=overrides)


def test_config_unknown_recipe_and_bad_yaml(tmp_path):
    with pytest.raises(UserError, match="unknown config 'no_such_recipe'"):
        load_config(Outer, "no_such_recipe", kind="tracking")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(Outer, str(bad))


def test_parse_overrides_nests_and_types():
    assert parse_overrides(["a.b.c=1", "a.d=x", "e=[1, 2]"]) == {"a": {"b": {"c": 1}, "d": "x"}, "e": [1, 2]}


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("partial")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]
    with atomic_write(target) as f:
        f.write("new")
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["out.txt"]
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~mask


def test_cli_unknown_command_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["no-such-command"])
    assert exc.value.code == 2
    assert "unknown command 'no-such-command'" in capsys.readouterr().err


def test_cli_every_subcommand_has_help(capsys):
    for name in cli.SUBCOMMANDS:
        with pytest.raises(SystemExit) as exc:
            cli.main([name, "--help"])
        assert exc.value.code == 0, name
        assert f"mimtrack {name}" in capsys.readouterr().out
