"""The plugin boundary: discovery, listing, broken-plugin isolation, duplicates, load control."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import condgen
from condgen.errors import PluginError
from condgen.plugins import PluginWarning, list_plugins, registry

from helpers import SignConditioner, SignPlugin


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "condgen", *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=300
    )


def test_label_plugin_is_found_through_its_entry_point():
    infos = {p.name: p for p in list_plugins()}
    label = infos["label"]
    assert label.distribution == "condgen-label"
    assert label.version == "0.1.0"
    assert label.conditioners == ["label"] and label.ok
    assert infos["condgen.data.builtin"].datasets == ["mnist"]
    assert registry().conditioner_class("label").__module__ == "condgen_label"


def test_registered_plugin_object_appears_and_goes(register_plugin):
    register_plugin(SignPlugin(), "sign-plugin")
    assert registry().conditioner_class("sign") is SignConditioner
    assert "sign-plugin" in [p.name for p in list_plugins()]


def test_unregistered_plugin_is_gone():
    with pytest.raises(PluginError, match="unknown conditioner 'sign'; installed conditioners: label"):
        registry().conditioner_class("sign")


class Raising:
    @condgen.hookimpl
    def condgen_register_conditioners(self, register):
        raise RuntimeError("boom in plugin")


class Garbage:
    @condgen.hookimpl
    def condgen_register_conditioners(self, register):
        register(dict)


def test_plugin_that_raises_is_isolated_and_listed(register_plugin):
    register_plugin(Raising(), "raising")
    with pytest.warns(PluginWarning, match="plugin 'raising'.*RuntimeError: boom in plugin"):
        reg = registry()
    assert reg.conditioner_class("label")  # the others keep working
    assert "boom in plugin" in reg.plugins["raising"].error


def test_plugin_that_registers_garbage_is_isolated_and_listed(register_plugin):
    register_plugin(Garbage(), "garbage")
    with pytest.warns(PluginWarning, match="invalid conditioner.*not a subclass of condgen.Conditioner"):
        infos = {p.name: p for p in list_plugins()}
    assert not infos["garbage"].ok and infos["label"].ok


class AnotherLabel:
    @condgen.hookimpl
    def condgen_register_conditioners(self, register):
        from condgen_label import LabelConditioner

        class Impostor(LabelConditioner):
            pass

        register(Impostor)


def test_duplicate_conditioner_names_are_an_error_naming_both(register_plugin):
    register_plugin(AnotherLabel(), "impostor")
    with pytest.warns(PluginWarning, match="registered by both"):
        reg = registry()
    with pytest.raises(PluginError) as err:
        reg.conditioner_class("label")
    assert "plugin 'label' (condgen-label 0.1.0)" in str(err.value)
    assert "plugin 'impostor'" in str(err.value)


def test_cli_lists_plugins_as_json():
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["label"]["version"] == "0.1.0" and rows["label"]["conditioners"] == ["label"]


def test_env_var_restricts_plugins_and_empty_loads_none():
    none = run_cli("plugins", "--json", env={"CONDGEN_PLUGINS": ""})
    assert [r["name"] for r in json.loads(none.stdout)] == ["condgen.data.builtin"]
    only = run_cli("plugins", "--json", env={"CONDGEN_PLUGINS": "condgen-label"})
    assert "label" in [r["name"] for r in json.loads(only.stdout)]
    missing = run_cli("plugins", env={"CONDGEN_PLUGINS": "nonesuch"})
    assert "CONDGEN_PLUGINS names 'nonesuch'" in missing.stderr


def _fake_distribution(root: Path, module_body: str) -> None:
    """An installed-looking distribution ``broken-plugin`` whose entry point is module ``broken_mod``."""
    info = root / "broken_plugin-9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 9.9\n")
    (info / "entry_points.txt").write_text("[condgen]\nbroken = broken_mod\n")
    (root / "broken_mod.py").write_text(textwrap.dedent(module_body))


def test_plugin_failing_to_import_does_not_crash_the_toolkit(tmp_path):
    _fake_distribution(tmp_path, "import not_a_module_anywhere\n")
    env = {"PYTHONPATH": str(tmp_path)}
    listing = run_cli("plugins", env=env)
    assert listing.returncode == 0, listing.stderr
    line = next(ln for ln in listing.stdout.splitlines() if ln.startswith("broken "))
    assert "broken-plugin" in line and "9.9" in line
    assert "BROKEN: failed to load: ModuleNotFoundError" in line
    assert "warning: plugin 'broken' (broken-plugin 9.9) failed to load" in listing.stderr
    # and the good plugins still work next to it
    data = json.loads(run_cli("plugins", "--json", env=env).stdout)
    assert {r["name"]: r["ok"] for r in data}["label"] is True
