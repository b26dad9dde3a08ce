"""The plugin boundary: discovery, listing, broken-plugin isolation, duplicates, load control."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import condgen
from condgen.common.errors import PluginError
from condgen.engine.likelihood import Bernoulli
from condgen.engine.networks import MLP
from condgen.plugin.registry import (DATASETS, DEFAULT_PLUGINS, KINDS, HookKind, PluginWarning, list_plugins,
                                     registry)

from helpers import SignConditioner, SignPlugin, fake_distribution


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "condgen", *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=300
    )


def test_label_plugin_is_found_through_its_entry_point():
    infos = {p.name: p for p in list_plugins()}
    label = infos["label"]
    assert label.distribution == "condgen-label"
    assert label.version == "0.2.0"
    assert label.conditioners == ["label"] and label.ok
    assert infos["condgen.builtins.datasets"].datasets == ["mnist", "npz", "fashion-mnist", "image-folder"]
    assert registry().conditioner_class("label").__module__ == "condgen_label.conditioner"


def test_registered_plugin_object_appears_and_goes(register_plugin):
    register_plugin(SignPlugin(), "sign-plugin")
    assert registry().conditioner_class("sign") is SignConditioner
    assert "sign-plugin" in [p.name for p in list_plugins()]


def test_unregistered_plugin_is_gone():
    # (other installed plugins, such as the condgen-word example, may add names after these)
    with pytest.raises(PluginError, match="unknown conditioner 'sign'; installed conditioners: inpaint, label, "
                                          "regression(, [a-z]+)* \\("):
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
    assert "plugin 'label' (condgen-label 0.2.0)" in str(err.value)
    assert "plugin 'impostor'" in str(err.value)


def test_cli_lists_plugins_as_json():
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["label"]["version"] == "0.2.0" and rows["label"]["conditioners"] == ["label"]


def test_env_var_restricts_plugins_and_empty_loads_none():
    none = run_cli("plugins", "--json", env={"CONDGEN_PLUGINS": ""})
    rows = {r["name"]: r for r in json.loads(none.stdout)}
    assert [name for name, r in rows.items() if r["loaded"]] == sorted(DEFAULT_PLUGINS)
    # the others are listed as installed but left out, with what was known without importing them
    assert {k: rows["label"][k] for k in ("distribution", "version", "conditioners", "ok", "error", "not_loaded")} == {
        "distribution": "condgen-label", "version": "0.2.0", "conditioners": [], "ok": False, "error": None,
        "not_loaded": "CONDGEN_PLUGINS leaves it out"}
    only = run_cli("plugins", "--json", env={"CONDGEN_PLUGINS": "condgen-label"})
    assert {r["name"] for r in json.loads(only.stdout) if r["loaded"]} == {*DEFAULT_PLUGINS, "label"}
    missing = run_cli("plugins", env={"CONDGEN_PLUGINS": "nonesuch"})
    assert "CONDGEN_PLUGINS names 'nonesuch'" in missing.stderr


def test_plugin_failing_to_import_does_not_crash_the_toolkit(tmp_path):
    fake_distribution(tmp_path, "import not_a_module_anywhere\n")
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


def test_plugin_calling_exit_on_import_does_not_end_the_toolkit(tmp_path):
    fake_distribution(tmp_path, "raise SystemExit('this plugin quits')\n")
    listing = run_cli("plugins", env={"PYTHONPATH": str(tmp_path)})
    assert listing.returncode == 0, listing.stderr
    assert "BROKEN: failed to load: SystemExit: this plugin quits" in listing.stdout


class Counting:
    """Counts how often its hook runs."""

    calls = 0

    @condgen.hookimpl
    def condgen_register_conditioners(self, register):
        Counting.calls += 1


def test_hooks_run_once_until_the_plugins_change():
    from condgen.plugin.registry import get_plugin_manager, reload_plugins

    pm = get_plugin_manager()
    pm.register(Counting(), name="counting")
    try:
        Counting.calls = 0
        first = registry()
        assert registry() is first and registry() is first and Counting.calls == 1
        pm.register(SignPlugin(), name="sign-plugin")  # a new plugin object: the hooks run again
        assert registry().conditioner_class("sign") is SignConditioner and Counting.calls == 2
    finally:
        reload_plugins()  # as after pip install: entry points load again; objects registered by hand are gone
    assert get_plugin_manager() is not pm
    assert "counting" not in [p.name for p in list_plugins()] and registry().conditioner_class("label")


class Reserved:
    @condgen.hookimpl
    def condgen_register_conditioners(self, register):
        class Train(SignConditioner):
            name = "train"

        register(Train)


def test_a_conditioner_name_the_model_cannot_hold_is_refused(register_plugin):
    register_plugin(Reserved(), "reserved")
    with pytest.warns(PluginWarning, match=r"name 'train' is reserved \(an attribute of torch.nn.Module\)"):
        assert "train" not in registry().conditioners


def _imports(path: Path, module: str, modules: set[str]) -> set[str]:
    """The ``modules`` that ``module`` (the file ``path``) imports anywhere, also inside functions, but not
    under ``if TYPE_CHECKING``. ``from P import x`` imports the module P.x where there is one, else P."""
    import ast

    tree = ast.parse(path.read_text())
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = module if path.name == "__init__.py" else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
    return found & modules


REPO = Path(__file__).resolve().parents[1]


def test_the_core_has_no_import_loops():
    files = {}
    for path in sorted((REPO / "condgen").rglob("*.py")):
        files[".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")] = path
    graph = {m: _imports(p, m, set(files)) - {m} for m, p in files.items()}
    loops = []

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            loops.append(stack[stack.index(node):] + [node])
            return
        for nxt in sorted(graph[node]):
            if not loops:
                visit(nxt, stack + [node])

    for start in sorted(graph):
        visit(start, [])
    assert not loops, " -> ".join(loops[0])


def test_built_in_plugins_and_the_example_plugin_use_only_what_condgen_exports():
    import ast

    used_anywhere = set()
    for path in [*sorted((REPO / "plugins").rglob("*.py")), REPO / "examples" / "condgen-word" / "condgen_word.py"]:
        if "tests" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        used = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(a.name == "condgen" or not a.name.startswith("condgen.") for a in node.names), path
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "condgen":
                assert node.module == "condgen", f"{path}: from {node.module} import ..."
                used.update(a.name for a in node.names)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "condgen":
                used.add(node.attr)
        assert used <= set(condgen.__all__), (path, sorted(used - set(condgen.__all__)))
        used_anywhere |= used
    assert {"Conditioner", "hookimpl", "attributes"} <= used_anywhere  # the check saw the plugins' imports


def test_a_plugin_adds_a_command(register_plugin, capsys):
    from condgen.cli import main

    from helpers import EchoCommandPlugin

    register_plugin(EchoCommandPlugin(), "echo-plugin")
    assert main(["echo", "hello", "world"]) == 0
    assert capsys.readouterr().out == "echo: hello world\n"
    assert main(["echo", "fail"]) == 2  # its CondgenError is the usual one line
    assert capsys.readouterr().err == "error: echo was told to fail\n"
    assert {p.name: p for p in list_plugins()}["echo-plugin"].commands == ["echo"]


def test_a_command_may_not_replace_a_built_in_one(register_plugin):
    from helpers import ClashingCommandPlugin

    register_plugin(ClashingCommandPlugin(), "clash")
    with pytest.warns(PluginWarning, match="command 'train' is one of condgen's own"):
        reg = registry()
    assert "train" not in reg.commands and not reg.plugins["clash"].ok


class BadArgumentsPlugin:
    @condgen.hookimpl
    def condgen_register_commands(self, register):
        def broken(parser):
            raise RuntimeError("no flags today")

        register(condgen.Command(name="broken-cmd", help="x", add_arguments=broken, run=lambda args: 0))


def test_a_command_whose_arguments_fail_is_left_out_with_a_warning(register_plugin, capsys):
    from condgen.cli import main

    register_plugin(BadArgumentsPlugin(), "bad-args")
    with pytest.raises(SystemExit) as help_exit:
        main(["--help"])  # the rest of the command line still works
    out, err = capsys.readouterr()
    assert help_exit.value.code == 0 and "inpaint" in out and "broken-cmd" not in out
    assert "warning: command 'broken-cmd' from a plugin failed to declare its arguments (no flags today)" in err
    with pytest.raises(SystemExit):
        main(["broken-cmd"])
    assert main(["plugins"]) == 0


def _registering(cls: type) -> object:
    class Plugin:
        @condgen.hookimpl
        def condgen_register_conditioners(self, register):
            register(cls)

    return Plugin()


def test_a_conditioner_that_still_adds_run_methods_is_refused_saying_what_to_do(register_plugin):
    class WithMethods(SignConditioner):
        name = "with_methods"
        run_methods = {"describe": lambda run: "x"}

    register_plugin(_registering(WithMethods), "old-style")
    with pytest.warns(PluginWarning, match=r"WithMethods.run_methods is no longer supported"):
        info = {p.name: p for p in list_plugins()}["old-style"]
    assert "with_methods" not in registry().conditioners and not info.ok
    assert "offer a function that takes the run instead" in info.error


class AttributePlugin:
    def __init__(self, name: str, function) -> None:
        self.name, self.function = name, function

    @condgen.hookimpl
    def condgen_register_attributes(self, register):
        register(self.name, self.function)


def test_a_plugin_adds_attribute_functions(register_plugin):
    register_plugin(AttributePlugin("brightest", lambda images: images.flatten(1).amax(1)), "brightest")
    assert condgen.attributes()["brightest"](torch.tensor([[[[0.2, 0.9]]]])).tolist() == [pytest.approx(0.9)]
    info = {p.name: p for p in list_plugins()}
    assert info["brightest"].attributes == ["brightest"] and info["regression"].attributes == ["ink", "slant"]


@pytest.mark.parametrize("name, function, problem", [
    ("not a name", lambda images: images, "registered an invalid attribute: an attribute name must be a Python "
                                          "identifier, got 'not a name'"),
    ("width", 3.0, "registered an invalid attribute: attribute 'width' needs a callable function, got 3.0"),
])
def test_a_bad_attribute_function_marks_its_plugin_broken(register_plugin, name, function, problem):
    register_plugin(AttributePlugin(name, function), "bad-attribute")
    with pytest.warns(PluginWarning, match="plugin 'bad-attribute'"):
        info = {p.name: p for p in list_plugins()}
    assert not info["bad-attribute"].ok and info["bad-attribute"].error == problem
    assert info["bad-attribute"].attributes == [] and name not in condgen.attributes()
    assert condgen.attributes()["ink"].__module__ == "condgen_regression.attributes"  # the others keep working


class WrongArity:
    @condgen.hookimpl
    def condgen_register_datasets(self, register):
        register("only-a-name")


def test_register_called_with_the_wrong_arguments_is_said_in_the_hooks_terms(register_plugin):
    register_plugin(WrongArity(), "wrong-arity")
    with pytest.warns(PluginWarning, match="plugin 'wrong-arity'"):
        info = {p.name: p for p in list_plugins()}["wrong-arity"]
    assert info.error == ("called condgen_register_datasets's register with the wrong arguments (missing a "
                          "required argument: 'loader')")
    assert "only-a-name" not in registry().datasets


# -- one rule for a name two plugins register, the same for every hook kind ----------------------
def _no_arguments(parser) -> None:
    pass


#: For each hook kind (by noun): ``make(name, tag)``, the arguments a plugin gives ``register`` (``tag`` tells
#: two plugins' values apart), and ``use(name)``, what the toolkit does with the name.
KIND_CASES = {
    "conditioner": (lambda name, tag: (type(f"Sign{tag}", (SignConditioner,), {"name": name}),),
                    lambda name: registry().conditioner_class(name)),
    "dataset": (lambda name, tag: (name, lambda config: tag), lambda name: registry().dataset_loader(name)),
    "command": (lambda name, tag: (condgen.Command(name, f"help {tag}", _no_arguments, lambda args: tag),),
                lambda name: registry().get("command", name).run(argparse.Namespace())),
    "attribute": (lambda name, tag: (name, lambda images: images.flatten(1).sum(1) + tag),
                  lambda name: condgen.attributes()[name](torch.zeros(1, 1, 2, 2))),
    "architecture": (lambda name, tag: (type(f"MLP{tag}", (MLP,), {"name": name}),),
                     lambda name: registry().architecture_class(name)),
    "likelihood": (lambda name, tag: (type(f"Bernoulli{tag}", (Bernoulli,), {"name": name}),),
                   lambda name: registry().get("likelihood", name)),
    "callback": (lambda name, tag: (type(f"Callback{tag}", (condgen.Callback,), {"name": name}),),
                 lambda name: registry().get("callback", name)),
    "widget": (lambda name, tag: (type(f"Widget{tag}", (condgen.Widget,), {
                   "conditioner": name, "build": lambda self, gr: [], "value": lambda self, *v: tag}),),
               lambda name: registry().get("widget", name)),
}


class Registers:
    """A plugin whose ``kind`` hook calls ``register(*args)`` for each ``args`` it is given."""

    def __init__(self, kind: HookKind, *calls: tuple) -> None:
        self.kind, self.calls = kind, calls

    def _give(self, hook: str, register) -> None:
        if hook == self.kind.hook:
            for args in self.calls:
                register(*args)

    @condgen.hookimpl
    def condgen_register_conditioners(self, register):
        self._give("condgen_register_conditioners", register)

    @condgen.hookimpl
    def condgen_register_datasets(self, register):
        self._give("condgen_register_datasets", register)

    @condgen.hookimpl
    def condgen_register_commands(self, register):
        self._give("condgen_register_commands", register)

    @condgen.hookimpl
    def condgen_register_attributes(self, register):
        self._give("condgen_register_attributes", register)

    @condgen.hookimpl
    def condgen_register_architectures(self, register):
        self._give("condgen_register_architectures", register)

    @condgen.hookimpl
    def condgen_register_likelihoods(self, register):
        self._give("condgen_register_likelihoods", register)

    @condgen.hookimpl
    def condgen_register_callbacks(self, register):
        self._give("condgen_register_callbacks", register)

    @condgen.hookimpl
    def condgen_register_widgets(self, register):
        self._give("condgen_register_widgets", register)


def _dupe_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if "'dupe'" in str(w.message)]


@pytest.mark.parametrize("order", [("alpha", "beta"), ("beta", "alpha")])  # pluggy calls the last registered first
@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.noun)
def test_a_name_two_plugins_register_is_withdrawn_naming_both(register_plugin, kind, order):
    make, use = KIND_CASES[kind.noun]
    for tag, plugin in enumerate(order):
        register_plugin(Registers(kind, make("dupe", tag)), plugin)
    with pytest.warns(PluginWarning) as caught:
        reg = registry()
    message = (f"{kind.noun} 'dupe' is registered by both plugin 'alpha' (not from a distribution) and plugin 'beta' "
               "(not from a distribution), so neither is used; uninstall one, or block one with "
               "CONDGEN_BLOCK_PLUGINS=NAME")
    assert _dupe_warnings(caught) == [message]  # once, the same whichever plugin's hook ran first
    assert "dupe" not in reg.entries(kind) and reg.resolve(kind).conflicts == {"dupe": ["alpha", "beta"]}
    rows = {p.name: p for p in list_plugins()}
    for plugin in order:
        assert (rows[plugin].ok, rows[plugin].error, getattr(rows[plugin], kind.plural)) == (False, message, [])
        assert rows[plugin].as_dict()[kind.plural] == []
    with pytest.raises(PluginError) as err:
        use("dupe")
    assert str(err.value) == message
    with pytest.raises(PluginError, match=re.escape(message)):
        reg.get(kind, "dupe")


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.noun)
def test_a_name_of_the_toolkits_own_plugin_is_refused_to_others(register_plugin, monkeypatch, kind):
    import condgen.plugin.registry as plugin_registry

    make, use = KIND_CASES[kind.noun]
    # the toolkit's own plugin registers no conditioner nor attribute: one more plugin of its own stands in
    monkeypatch.setattr(plugin_registry, "DEFAULT_PLUGINS", (*plugin_registry.DEFAULT_PLUGINS, "own"))
    own = make("dupe", 1)
    register_plugin(Registers(kind, make("dupe", 2)), "other-before")
    register_plugin(Registers(kind, own), "own")
    register_plugin(Registers(kind, make("dupe", 3)), "other-after")
    with pytest.warns(PluginWarning) as caught:
        reg = registry()
    refused = f"registered {kind.noun} 'dupe', which is one of condgen's own; choose another name"
    assert sorted(_dupe_warnings(caught)) == [f"plugin '{p}' (not from a distribution) {refused}; skipped"
                                             for p in ("other-after", "other-before")]
    assert reg.get(kind, "dupe") is own[-1] and reg.owner(kind, "dupe").name == "own"
    assert "dupe" not in reg.resolve(kind).conflicts
    rows = {p.name: p for p in list_plugins()}
    assert rows["own"].ok and getattr(rows["own"], kind.plural) == ["dupe"]
    for plugin in ("other-before", "other-after"):
        assert (rows[plugin].ok, rows[plugin].error, getattr(rows[plugin], kind.plural)) == (False, refused, [])
    use("dupe")  # no error: the toolkit's own is used


def test_a_plugin_may_not_take_a_built_in_data_set(register_plugin):
    from condgen.data.mnist import load_mnist_splits

    register_plugin(Registers(DATASETS, ("mnist", lambda config: None)), "fake-mnist")
    with pytest.warns(PluginWarning, match="plugin 'fake-mnist' .* registered dataset 'mnist', which is one of "
                                           "condgen's own; choose another name"):
        reg = registry()
    assert reg.dataset_loader("mnist") is load_mnist_splits and reg.dataset_plugin["mnist"] == DEFAULT_PLUGINS[0]
    assert not reg.plugins["fake-mnist"].ok and reg.plugins[DEFAULT_PLUGINS[0]].ok


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.noun)
def test_one_plugin_registering_a_name_twice_is_broken_and_its_first_is_used(register_plugin, kind):
    make, use = KIND_CASES[kind.noun]
    first = make("dupe", 1)
    register_plugin(Registers(kind, first, make("dupe", 2)), "twice")
    with pytest.warns(PluginWarning) as caught:
        reg = registry()
    problem = f"registered {kind.noun} 'dupe' twice; the first is used"
    assert _dupe_warnings(caught) == [f"plugin 'twice' (not from a distribution) {problem}; skipped"]
    assert reg.get(kind, "dupe") is first[-1] and reg.plugins["twice"].error == problem
    assert getattr(reg.plugins["twice"], kind.plural) == ["dupe"]


def test_a_withdrawn_command_is_one_error_line_on_the_command_line(register_plugin, capsys):
    from condgen.cli import main

    from helpers import EchoCommandPlugin

    register_plugin(EchoCommandPlugin(), "echo-one")
    register_plugin(EchoCommandPlugin(), "echo-two")
    assert main(["echo", "--flag", "hello"]) == 2  # whatever its arguments
    message = ("command 'echo' is registered by both plugin 'echo-one' (not from a distribution) and plugin "
               "'echo-two' (not from a distribution), so neither is used; uninstall one, or block one with "
               "CONDGEN_BLOCK_PLUGINS=NAME")
    # the CLI shows the warning as one line too, as it builds the parser
    assert capsys.readouterr().err.splitlines() == [f"warning: {message}", f"error: {message}"]
    assert main(["plugins"]) == 0 and "echo-one" in capsys.readouterr().out


# -- load control: CONDGEN_BLOCK_PLUGINS, and what `condgen plugins` shows -------------------------
@pytest.fixture
def fresh_plugins(monkeypatch):
    """Plugins found again under this test's environment, and once more (as before) after it."""
    from condgen.plugin.registry import reload_plugins

    monkeypatch.delenv("CONDGEN_PLUGINS", raising=False)
    monkeypatch.delenv("CONDGEN_BLOCK_PLUGINS", raising=False)
    reload_plugins()
    yield reload_plugins
    reload_plugins()  # monkeypatch restores the environment after this; the next use loads from it


SENTINEL_PLUGIN = """
    import condgen

    IMPORTS = 1  # counts nothing: if this module is imported at all, the test sees it in sys.modules

    @condgen.hookimpl
    def condgen_register_datasets(register):
        register("sentinel", lambda config: None)
"""


@pytest.mark.parametrize("block", ["sentinel", "sentinel-plugin", " nonesuch-x , sentinel-plugin ", "Sentinel_Plugin"])
def test_a_blocked_plugin_is_never_imported_and_listed_as_not_loaded(tmp_path, monkeypatch, fresh_plugins, block):
    module = "sentinel_mod_" + re.sub(r"\W", "_", block)  # a module name no other test has imported
    fake_distribution(tmp_path, SENTINEL_PLUGIN, dist="sentinel-plugin", entry_point="sentinel", module=module)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CONDGEN_BLOCK_PLUGINS", block)
    fresh_plugins()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        infos = {p.name: p for p in list_plugins()}
    assert module not in sys.modules
    assert "sentinel" not in registry().datasets and registry().dataset_loader("mnist")  # the rest loads
    info = infos["sentinel"]
    assert (info.distribution, info.version, info.loaded, info.ok, info.error) == ("sentinel-plugin", "9.9", False,
                                                                                  False, None)
    assert info.not_loaded == "CONDGEN_BLOCK_PLUGINS blocks it"
    assert infos["label"].ok and infos["label"].loaded
    # the only warning is for a name in the list that matches nothing installed
    assert [str(w.message) for w in caught] == (
        ["CONDGEN_BLOCK_PLUGINS names 'nonesuch-x', but no installed plugin has that name"] if "nonesuch" in block
        else [])
    given = block.split(",")[-1].strip()
    assert condgen.plugin.registry.filtered_out("sentinel", "sentinel-plugin") == (
        f"CONDGEN_BLOCK_PLUGINS={block!r} blocks it; remove {given} from CONDGEN_BLOCK_PLUGINS or unset it")


def test_blocking_applies_after_the_load_list(tmp_path, monkeypatch, fresh_plugins):
    fake_distribution(tmp_path, SENTINEL_PLUGIN, dist="sentinel-plugin", entry_point="sentinel",
                       module="sentinel_mod_after")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CONDGEN_PLUGINS", "sentinel,label")
    monkeypatch.setenv("CONDGEN_BLOCK_PLUGINS", "sentinel,regression")
    fresh_plugins()
    infos = {p.name: p for p in list_plugins()}
    assert "sentinel_mod_after" not in sys.modules
    assert [name for name, p in infos.items() if p.loaded] == [*sorted(DEFAULT_PLUGINS), "label"]
    assert infos["sentinel"].not_loaded == "CONDGEN_BLOCK_PLUGINS blocks it"
    assert infos["inpaint"].not_loaded == "CONDGEN_PLUGINS leaves it out"
    assert infos["regression"].not_loaded == "CONDGEN_PLUGINS leaves it out and CONDGEN_BLOCK_PLUGINS blocks it"
    # a plugin both variables leave out needs both fixed, and the message says both
    assert condgen.plugin.registry.filtered_out("regression", "condgen-regression") == (
        "CONDGEN_PLUGINS='sentinel,label' leaves it out; add regression to CONDGEN_PLUGINS or unset it; and "
        "CONDGEN_BLOCK_PLUGINS='sentinel,regression' blocks it; remove regression from CONDGEN_BLOCK_PLUGINS or unset it")
    assert condgen.plugin.registry.filtered_out("label", "condgen-label") is None


def test_the_toolkits_own_plugin_cannot_be_blocked(monkeypatch, fresh_plugins):
    monkeypatch.setenv("CONDGEN_BLOCK_PLUGINS", "condgen.builtins.datasets,condgen")
    fresh_plugins()
    with pytest.warns(PluginWarning) as caught:
        reg = registry()
    assert sorted(str(w.message) for w in caught) == [
        f"CONDGEN_BLOCK_PLUGINS names {name!r}, one of the toolkit's own plugins (the built-in data sets, "
        "architectures, likelihoods and callbacks), which cannot be blocked" for name in ("condgen", "condgen.builtins.datasets")]
    assert sorted(reg.datasets) == ["fashion-mnist", "image-folder", "mnist", "npz"] and reg.plugins["condgen.builtins.datasets"].ok


def test_a_blocked_plugin_that_is_needed_says_which_variable_and_the_fix(fresh_plugins, register_plugin, tmp_path,
                                                                        monkeypatch, capsys):
    from condgen.cli import main

    from helpers import ToyData, toy_config

    register_plugin(ToyData(), "toy-data")
    condgen.train(toy_config(epochs=1), tmp_path / "run", pictures=False, log=lambda s: None)
    monkeypatch.setenv("CONDGEN_BLOCK_PLUGINS", "condgen-label")
    fresh_plugins()
    blocks = ("CONDGEN_BLOCK_PLUGINS='condgen-label' blocks the installed plugins label (remove the one that "
              "provides 'label' from CONDGEN_BLOCK_PLUGINS, or unset it)")
    with pytest.raises(PluginError) as err:
        registry().conditioner_class("label")
    assert str(err.value).startswith("unknown conditioner 'label'; loaded conditioners: inpaint, regression")
    assert str(err.value).endswith("; " + blocks)
    needs = ("needs conditioner 'label' from plugin 'label' (distribution condgen-label 0.2.0), which is installed "
             "but not loaded: CONDGEN_BLOCK_PLUGINS='condgen-label' blocks it; remove condgen-label from "
             "CONDGEN_BLOCK_PLUGINS or unset it")
    with pytest.raises(PluginError, match=re.escape(needs)):
        condgen.load_run(tmp_path / "run")
    # on the command line: one line, exit 2, for a stored run and for a new one
    assert main(["sample", str(tmp_path / "run"), "--condition", "label=1", "--out", str(tmp_path / "s.png")]) == 2
    err_lines = capsys.readouterr().err.splitlines()
    assert len(err_lines) == 1 and err_lines[0].startswith("error: ") and err_lines[0].endswith(needs)
    assert main(["train", "--conditioner", "label", "--out", str(tmp_path / "new")]) == 2
    err_lines = capsys.readouterr().err.splitlines()
    assert len(err_lines) == 1 and err_lines[0].endswith(blocks)
    assert not (tmp_path / "new").exists() and not (tmp_path / "s.png").exists()


def test_conflicting_conditioners_suggest_blocking_one(register_plugin):
    register_plugin(AnotherLabel(), "impostor")
    with pytest.warns(PluginWarning, match="registered by both"):
        reg = registry()
    with pytest.raises(PluginError, match=r"uninstall one, or block one with CONDGEN_BLOCK_PLUGINS=NAME$"):
        reg.conditioner_class("label")


RAISES_IN_CONDITIONERS = """
    import condgen

    @condgen.hookimpl
    def condgen_register_conditioners(register):
        raise RuntimeError("boom in conditioners")
"""
RAISES_IN_COMMANDS = """
    import condgen

    @condgen.hookimpl
    def condgen_register_commands(register):
        raise RuntimeError("boom in commands")
"""


def test_condgen_plugins_lists_broken_and_left_out_plugins_and_exits_0(tmp_path):
    fake_distribution(tmp_path, "import not_a_module_anywhere\n")  # 'broken': fails to import
    fake_distribution(tmp_path, RAISES_IN_CONDITIONERS, dist="raiser-plugin", entry_point="raiser",
                       module="raiser_mod")
    fake_distribution(tmp_path, RAISES_IN_COMMANDS, dist="command-raiser", entry_point="cmd-raiser",
                       module="cmd_raiser_mod")
    fake_distribution(tmp_path, "raise SystemExit('imported although blocked')\n", dist="blocked-plugin",
                       entry_point="blocked", module="blocked_mod")
    env = {"PYTHONPATH": str(tmp_path), "CONDGEN_BLOCK_PLUGINS": "blocked-plugin,inpaint"}
    listing = run_cli("plugins", env=env)
    assert listing.returncode == 0, listing.stderr
    rows = {ln.split()[0]: ln for ln in listing.stdout.splitlines()[1:]}
    assert rows["broken"].endswith("BROKEN: failed to load: ModuleNotFoundError: No module named 'not_a_module_anywhere'")
    assert rows["raiser"].endswith("BROKEN: condgen_register_conditioners raised RuntimeError: boom in conditioners")
    assert rows["cmd-raiser"].endswith("BROKEN: condgen_register_commands raised RuntimeError: boom in commands")
    assert rows["blocked"].split() == ["blocked", "blocked-plugin", "9.9", *["-"] * 8, "not", "loaded:",
                                       "CONDGEN_BLOCK_PLUGINS", "blocks", "it"]
    assert rows["inpaint"].endswith("not loaded: CONDGEN_BLOCK_PLUGINS blocks it")
    assert rows["label"].split()[-1] == "ok"
    # each problem is warned about once, though the command hook ran for the parser before the listing
    for problem in ("'broken' (broken-plugin 9.9) failed to load", "'raiser' (raiser-plugin 9.9) "
                    "condgen_register_conditioners raised", "'cmd-raiser' (command-raiser 9.9) condgen_register_commands"):
        assert listing.stderr.count(f"warning: plugin {problem}") == 1, listing.stderr
    assert "blocked" not in listing.stderr

    as_json = run_cli("plugins", "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    data = {r["name"]: r for r in json.loads(as_json.stdout)}
    assert {name: (data[name]["ok"], data[name]["loaded"], data[name]["error"], data[name]["not_loaded"])
            for name in ("broken", "raiser", "cmd-raiser", "blocked", "label")} == {
        "broken": (False, True, "failed to load: ModuleNotFoundError: No module named 'not_a_module_anywhere'", None),
        "raiser": (False, True, "condgen_register_conditioners raised RuntimeError: boom in conditioners", None),
        "cmd-raiser": (False, True, "condgen_register_commands raised RuntimeError: boom in commands", None),
        "blocked": (False, False, None, "CONDGEN_BLOCK_PLUGINS blocks it"),
        "label": (True, True, None, None),
    }
    assert data["label"]["conditioners"] == ["label"] and data["blocked"]["version"] == "9.9"


# -- architectures: a broken one is one error line naming its plugin ---------------------------------
class _Wrong(MLP):
    """The MLP with one thing broken (``fault``)."""

    name = "wrong"
    fault = ""

    def __init__(self, model):
        if self.fault == "init":
            raise RuntimeError("no init")
        super().__init__(model)

    def build_encoder(self, shapes):
        if self.fault == "raises":
            raise RuntimeError("boom")
        if self.fault == "not-a-module":
            return lambda x, e: (x, e)
        encoder = super().build_encoder(shapes)
        if self.fault == "one-tensor":
            encoder.forward = lambda x, e: torch.zeros(len(x), 2 * shapes.latent_dim)
        return encoder

    def build_decoder(self, shapes):
        decoder = super().build_decoder(shapes)
        if self.fault == "flat-decoder":
            decoder.forward = lambda z, e: torch.zeros(len(z), shapes.params * shapes.x_dim)
        return decoder


@pytest.mark.parametrize("fault, message", [
    ("init", "architecture 'wrong': _Wrong(model) raised RuntimeError: no init (a bug in plugin 'wrong-arch'"),
    ("raises", "architecture 'wrong': build_encoder raised RuntimeError: boom (a bug in plugin 'wrong-arch'"),
    ("not-a-module", "architecture 'wrong': build_encoder gave function, not a torch.nn.Module (a bug in plugin "
                     "'wrong-arch'"),
    ("one-tensor", "architecture 'wrong': for two rows its encoder gives a tensor [2, 4], where the contract is "
                   "(mu, logvar), tensors [2, 2] each (a bug in plugin 'wrong-arch'"),
    ("flat-decoder", "architecture 'wrong': for two rows its decoder gives a tensor [2, 36], where the contract is "
                     "a tensor [2, 1, 1, 6, 6] (a bug in plugin 'wrong-arch'"),
])
def test_a_broken_architecture_is_one_error_line_naming_its_plugin(register_plugin, tmp_path, capsys, fault,
                                                                   message):
    from condgen.cli import main
    from helpers import ToyData, one_error_line

    class Plugin:
        @condgen.hookimpl
        def condgen_register_architectures(self, register):
            register(type("_Wrong", (_Wrong,), {"fault": fault}))

    register_plugin(ToyData(), "toy-data")
    register_plugin(Plugin(), "wrong-arch")
    assert main(["train", "--dataset", "toy", "--arch", "wrong", "--conditioner", "label:num_classes=2",
                 "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "run")]) == 2
    assert message in one_error_line(capsys)


def test_an_unknown_architecture_names_the_field_and_the_registered_ones(capsys, tmp_path):
    from condgen.cli import main
    from helpers import one_error_line

    assert main(["train", "--arch", "resnet", "--out", str(tmp_path / "run")]) == 2
    assert one_error_line(capsys) == (
        "error: model.arch: unknown architecture 'resnet'; installed architectures: conv, mlp (`condgen plugins` "
        "lists plugins; `pip install` one that provides 'resnet')")


class _NoNll(condgen.Likelihood):
    name = "no-nll"

    def mean(self, params):
        return params


class _FlatNll(Bernoulli):
    """Forgets to sum over the elements: (B, D), not (B,)."""

    name = "flat-nll"

    def nll(self, params, x, scored=None):
        return torch.nn.functional.binary_cross_entropy_with_logits(params, x, reduction="none")


def test_a_likelihood_without_nll_marks_its_plugin_broken(register_plugin):
    class Plugin:
        @condgen.hookimpl
        def condgen_register_likelihoods(self, register):
            register(_NoNll)

    register_plugin(Plugin(), "no-nll-plugin")
    with pytest.warns(PluginWarning, match="registered an invalid likelihood: _NoNll does not implement nll"):
        assert "no-nll" not in registry().likelihoods


def test_a_likelihood_giving_the_wrong_shape_is_one_error_line_naming_its_plugin(register_plugin, tmp_path, capsys):
    from condgen.cli import main
    from helpers import ToyData, one_error_line

    class Plugin:
        @condgen.hookimpl
        def condgen_register_likelihoods(self, register):
            register(_FlatNll)

    register_plugin(ToyData(), "toy-data")
    register_plugin(Plugin(), "flat-nll-plugin")
    assert main(["train", "--dataset", "toy", "--likelihood", "flat-nll", "--conditioner", "label:num_classes=2",
                 "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "run")]) == 2
    assert one_error_line(capsys) == (
        "error: likelihood 'flat-nll': for two rows its nll gives a tensor [2, 36], where the contract is a tensor "
        "[2] (a bug in plugin 'flat-nll-plugin' (not from a distribution))")


def test_a_conditioner_with_a_malformed_embed_shape_is_named(register_plugin, tmp_path, capsys):
    from condgen.cli import main
    from helpers import ToyData, one_error_line

    class Flat2D(SignConditioner):
        name = "flat2d"
        spatial_size = (3,)  # one side only

    class Plugin:
        @condgen.hookimpl
        def condgen_register_conditioners(self, register):
            register(Flat2D)

    register_plugin(ToyData(), "toy-data")
    register_plugin(Plugin(), "flat2d-plugin")
    assert main(["train", "--dataset", "toy", "--conditioner", "flat2d", "--epochs", "1", "--device", "cpu",
                 "--out", str(tmp_path / "run")]) == 2
    assert one_error_line(capsys).startswith(
        "error: conditioner 'flat2d' gives embed_shape (3, 3) (embed_dim 3, spatial_size (3,)); it must be (E,) or "
        "(E, H, W) of whole numbers >= 1")
