"""Start-up: the command line's help, its version and the plugins' entry-point modules load without
torch (nor numpy, pydantic, matplotlib), so ``condgen --help`` answers at once; the names stay
importable from ``condgen`` and from the bundled plugins, imported when first used."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap

import pytest

import condgen
from helpers import fake_distribution

#: What start-up must not import: each takes from a tenth of a second (pydantic) to seconds (torch).
HEAVY = ("torch", "numpy", "pydantic", "matplotlib", "safetensors", "tqdm", "filelock", "yaml")
#: The bundled plugins only: a third-party plugin whose entry-point module imports torch at its top
#: (the condgen-word example does) brings torch back, which is that plugin's cost, not condgen's.
BUNDLED = "condgen-label,condgen-inpaint,condgen-regression"
HELPS = [["--help"], ["--version"], ["train", "--help"], ["sample", "--help"], ["evaluate", "--help"],
         ["export", "--help"], ["report", "--help"], ["demo", "--help"], ["plugins", "--help"], ["inpaint", "--help"]]

# Runs each command line through condgen.cli.main in one process, then lists the heavy modules loaded.
PROBE = """
import contextlib, io, json, sys
from condgen.cli import main

results = {}
for argv in json.loads(sys.argv[1]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    results[" ".join(argv)] = {"code": code, "out": out.getvalue()}
results["heavy modules"] = sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)
print(json.dumps(results))
"""


def probe(argvs: list[list[str]], **env: str) -> tuple[dict, str]:
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argvs), json.dumps(HEAVY)], capture_output=True,
                            text=True, env={**os.environ, "CONDGEN_PLUGINS": BUNDLED, **env}, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_help_and_version_import_no_torch_and_list_the_plugin_commands():
    results, stderr = probe(HELPS)
    assert results.pop("heavy modules") == []
    assert {argv: r["code"] for argv, r in results.items()} == {" ".join(a): 0 for a in HELPS}
    assert results["--version"]["out"] == f"condgen {condgen.__version__}\n"
    top = results["--help"]["out"]
    assert "  inpaint   complete the missing pixels of an image" in top  # the inpaint plugin's command
    from condgen.plugin.command import BUILT_IN_COMMANDS

    for command in BUILT_IN_COMMANDS:
        assert f"    {command} " in top
    # the inpaint command's flags, mask names included, come without its conditioner (nor torch)
    assert "quadrants, top-half, bottom-half" in results["inpaint --help"]["out"]
    assert "--latent-dim" in results["train --help"]["out"] and "--condition" in results["sample --help"]["out"]
    assert stderr == ""


def test_help_survives_broken_plugins_and_still_imports_no_torch(tmp_path):
    fake_distribution(tmp_path, "import not_a_module_anywhere\n", "import-fails", "import-fails", "import_fails_mod", "1.0")
    fake_distribution(tmp_path, dist="hook-raises", entry_point="hook-raises", module="hook_raises_mod", version="1.0",
                      module_body="""
        import condgen

        @condgen.hookimpl
        def condgen_register_commands(register):
            raise RuntimeError("no commands today")
    """)
    fake_distribution(tmp_path, dist="bad-command", entry_point="bad-command", module="bad_command_mod", version="1.0",
                      module_body="""
        import condgen

        @condgen.hookimpl
        def condgen_register_commands(register):
            register("not a Command")
    """)
    results, stderr = probe([["--help"]], PYTHONPATH=str(tmp_path),
                            CONDGEN_PLUGINS=f"{BUNDLED},import-fails,hook-raises,bad-command")
    assert results["heavy modules"] == [] and results["--help"]["code"] == 0
    assert "  inpaint   complete the missing pixels" in results["--help"]["out"]
    assert stderr.splitlines() == [
        "warning: plugin 'import-fails' (import-fails 1.0) failed to load: ModuleNotFoundError: No module named "
        "'not_a_module_anywhere'; skipped",
        "warning: plugin 'bad-command' (bad-command 1.0) registered an invalid command: registered 'not a Command', "
        "which is not a condgen.Command; skipped",
        "warning: plugin 'hook-raises' (hook-raises 1.0) condgen_register_commands raised RuntimeError: no commands "
        "today; skipped",
    ]


def test_import_condgen_and_its_plugins_is_cheap_until_a_heavy_name_is_used():
    code = textwrap.dedent(f"""
        import sys
        heavy = lambda: sorted(m for m in {HEAVY!r} if m in sys.modules)
        import condgen, condgen_label, condgen_inpaint, condgen_regression
        import condgen.plugin.registry
        from condgen import Command, CondgenError, PluginError, hookimpl, __version__
        condgen.plugin.registry.get_plugin_manager()  # every entry-point module, imported
        print(heavy())
        from condgen import Conditioner
        print(heavy())
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "CONDGEN_PLUGINS": BUNDLED})
    assert result.returncode == 0, result.stderr
    before, after = result.stdout.splitlines()
    assert before == "[]"
    assert {"torch", "pydantic"} <= set(ast.literal_eval(after))


def test_every_export_resolves_to_its_definition():
    import importlib

    for name in condgen.__all__:
        value = getattr(condgen, name)
        if name != "__version__":
            assert value is getattr(importlib.import_module(condgen._EXPORTS[name], "condgen"), name), name
    assert set(condgen.__all__) <= set(dir(condgen))
    assert condgen.plugin.registry is importlib.import_module("condgen.plugin.registry")  # submodules, as eager imports gave them
    from condgen import Conditioner, hookimpl  # the from-import form

    assert Conditioner is condgen.plugin.conditioner.Conditioner and hookimpl is condgen.plugin.hookspecs.hookimpl

    with pytest.raises(AttributeError, match="module 'condgen' has no attribute 'nonesuch'"):
        condgen.nonesuch
    import condgen_inpaint
    import condgen_label
    import condgen_regression

    for plugin in (condgen_label, condgen_inpaint, condgen_regression):
        for name in plugin.__all__:
            assert getattr(plugin, name) is not None, (plugin.__name__, name)
        with pytest.raises(AttributeError):
            plugin.nonesuch
    assert condgen_inpaint.MASK_KINDS is condgen_inpaint.masks.MASK_KINDS
    assert condgen_label.LabelConditioner.name == "label"


def test_version_and_own_commands_import_no_plugin_module(tmp_path):
    """A third-party plugin that imports torch at its top costs only the command lines that need plugins."""
    fake_distribution(tmp_path, "import torch\nimport condgen\n", dist="heavy-plugin", entry_point="heavy",
                      module="heavy_mod", version="1.0")
    for argv in (["--version"], ["train", "--help"], ["--debug", "sample", "--help"]):
        results, _ = probe([argv], PYTHONPATH=str(tmp_path), CONDGEN_PLUGINS=f"{BUNDLED},heavy-plugin")
        assert results["heavy modules"] == [], argv
    results, _ = probe([["--help"]], PYTHONPATH=str(tmp_path), CONDGEN_PLUGINS=f"{BUNDLED},heavy-plugin")
    assert "torch" in results["heavy modules"]  # the top-level help lists plugin commands: it loads them all


BUILD_AND_LOAD = r"""
import json, sys, tempfile, torch, condgen
from condgen.runs.build import create_run
from condgen.runs.store import save_run
config = condgen.RunConfig.parse({"conditioners": [{"name": "label", "config": {"embedding": sys.argv[1]}}],
                                  "model": {"latent_dim": 2, "hidden": [8]}})
split = {"image": torch.rand(20, 1, 28, 28), "label": torch.arange(20) % 10}
run = create_run(config, split, torch.device("cpu"))
with tempfile.TemporaryDirectory() as tmp:
    save_run(run, tmp + "/checkpoint.safetensors", {})
    condgen.load_run(tmp + "/checkpoint.safetensors")
print(json.dumps(sorted(m for m in ("torch._dynamo", "sympy") if m in sys.modules)))
"""


def test_building_and_loading_a_one_hot_run_leaves_torch_dynamo_unimported():
    # the model's size is counted on the meta device, where an op with a Python meta kernel (torch.eye,
    # normal_) imports torch._dynamo: 2 s and 150 MiB (the learned embedding's nn.Embedding still does)
    out = subprocess.run([sys.executable, "-c", BUILD_AND_LOAD, "onehot"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
