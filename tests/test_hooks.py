"""One test per hook of the plugin boundary (``test_hook_<hook name>``), each through a real plugin object,
and the meta-test that keeps it so: every hook in ``condgen/hookspecs.py`` has a typed, documented
signature, a section in ``docs/plugins/hooks.md`` and a test here."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
import torch
from helpers import EchoCommandPlugin, SignPlugin, ToyData, make_toy_splits, toy_config

import condgen
from condgen import hookspecs
from condgen.cli import main
from condgen.plugin.registry import list_plugins, registry

REPO = Path(__file__).resolve().parents[1]
HOOK_DOCS = REPO / "docs" / "plugins" / "hooks.md"


def hook_names(module=hookspecs) -> list[str]:
    return sorted(n for n, f in vars(module).items() if hasattr(f, f"{hookspecs.PROJECT_NAME}_spec"))


def test_hook_condgen_register_conditioners(register_plugin, tmp_path):
    register_plugin(ToyData(), "toy-data")
    register_plugin(SignPlugin(), "sign-plugin")
    config = toy_config(epochs=1).model_copy(update={"conditioners": [condgen.ConditionerSpec(name="sign")]})
    run = condgen.train(config, tmp_path / "run", pictures=False, log=lambda s: None)
    assert type(run.conditioners["sign"]).__name__ == "SignConditioner"
    assert run.conditioners["sign"].scale == 4.0  # fit() saw the training split (|value| <= 1)
    assert run.sample({"sign": [[-1.0], [1.0]]}, num=2).shape == (2, 1, 6, 6)
    assert {p.name: p for p in list_plugins()}["sign-plugin"].conditioners == ["sign"]


class SmallToyData:
    """The ``toy`` data set, 64 training items, recording the configs it is loaded with."""

    def __init__(self) -> None:
        self.configs: list[condgen.DataConfig] = []

    @condgen.hookimpl
    def condgen_register_datasets(self, register):
        def load(config: condgen.DataConfig) -> condgen.DataSplits:
            self.configs.append(config)
            return make_toy_splits(n_train=64, n_test=32)

        register("toy", load)


def test_hook_condgen_register_datasets(register_plugin, tmp_path):
    plugin = SmallToyData()
    register_plugin(plugin, "small-toy")
    assert registry().dataset_plugin["toy"] == "small-toy"
    run = condgen.train(toy_config(epochs=1), tmp_path / "run", pictures=False, log=lambda s: None)
    assert [c.dataset for c in plugin.configs] == ["toy"]
    assert run.model.data_shape == (1, 6, 6) and run.sample({"label": 1}, num=2).shape == (2, 1, 6, 6)


def test_hook_condgen_register_commands(register_plugin, capsys):
    register_plugin(EchoCommandPlugin(), "echo-plugin")
    assert main(["echo", "a", "b"]) == 0 and capsys.readouterr().out == "echo: a b\n"
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "echo" in capsys.readouterr().out


class BrightestPlugin:
    @condgen.hookimpl
    def condgen_register_attributes(self, register):
        register("brightest", lambda images: images.flatten(1).amax(1))


def test_hook_condgen_register_attributes(register_plugin):
    from condgen_regression import RegressionConditioner

    register_plugin(BrightestPlugin(), "brightest")
    images = torch.tensor([[[[0.2, 0.9]]], [[[0.1, 0.3]]]])
    assert condgen.attributes()["brightest"](images).tolist() == pytest.approx([0.9, 0.3])
    # the regression conditioner conditions on any registered attribute by name
    conditioner = RegressionConditioner({"targets": ["brightest"]})
    assert conditioner.target_values({"image": images}).flatten().tolist() == pytest.approx([0.9, 0.3])


class LinearNets(condgen.Architecture):
    """A third party's architecture: one linear layer each way, written against condgen's exports only."""

    name = "linear"

    def build_encoder(self, shapes: condgen.NetworkShapes) -> torch.nn.Module:
        return LinearEncoder(shapes)

    def build_decoder(self, shapes: condgen.NetworkShapes) -> torch.nn.Module:
        return LinearDecoder(shapes)


class LinearEncoder(torch.nn.Module):
    def __init__(self, shapes: condgen.NetworkShapes) -> None:
        super().__init__()
        self.net = torch.nn.Linear(shapes.x_dim + shapes.embed_dim, 2 * shapes.latent_dim)

    def forward(self, x, e):
        return self.net(torch.cat([x.flatten(1), e], 1)).chunk(2, dim=1)


class LinearDecoder(torch.nn.Module):
    def __init__(self, shapes: condgen.NetworkShapes) -> None:
        super().__init__()
        self.out = (shapes.params, *shapes.data_shape)
        self.net = torch.nn.Linear(shapes.latent_dim + shapes.embed_dim, shapes.params * shapes.x_dim)

    def forward(self, z, e):
        return self.net(torch.cat([z, e], 1)).view(len(z), *self.out)


class LinearPlugin:
    @condgen.hookimpl
    def condgen_register_architectures(self, register):
        register(LinearNets)


def test_hook_condgen_register_architectures(register_plugin, tmp_path, capsys):
    register_plugin(ToyData(), "toy-data")
    register_plugin(LinearPlugin(), "linear-plugin")
    assert registry().architectures.keys() >= {"mlp", "conv", "linear"}
    config = toy_config(epochs=2).model_copy(update={"model": condgen.ModelConfig(arch="linear", latent_dim=3)})
    run = condgen.train(config, tmp_path / "run", pictures=False, log=lambda s: None)
    assert isinstance(run.model.decoder, LinearDecoder)
    assert run.model.decoder.net.in_features == 3 + 2  # z, and the label's one-hot embedding
    assert run.sample({"label": 1}, num=2).shape == (2, 1, 6, 6)
    loaded = condgen.load_run(tmp_path / "run")
    assert torch.equal(loaded.model.decoder.net.weight, run.model.decoder.net.weight)
    assert {p.name: p for p in list_plugins()}["linear-plugin"].architectures == ["linear"]
    assert main(["plugins"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("linear-plugin"))
    assert " linear " in row and row.endswith("ok")


class Laplace(condgen.Likelihood):
    """A third party's likelihood: a Laplace of learnt scale per element, its location from the decoder."""

    name = "laplace"
    params = 1

    def setup(self) -> None:
        self.log_scale = torch.nn.Parameter(torch.zeros(self.dim))

    def nll(self, params, x, scored=None):
        elements = (x - params).abs() * torch.exp(-self.log_scale) + self.log_scale + torch.log(torch.tensor(2.0))
        return (elements if scored is None else elements * scored).sum(-1)

    def mean(self, params):
        return params


class LaplacePlugin:
    @condgen.hookimpl
    def condgen_register_likelihoods(self, register):
        register(Laplace)


def test_hook_condgen_register_likelihoods(register_plugin, tmp_path):
    register_plugin(ToyData(), "toy-data")
    register_plugin(LaplacePlugin(), "laplace-plugin")
    config = toy_config(epochs=2).model_copy(update={"model": condgen.ModelConfig(likelihood="laplace", hidden=[32])})
    run = condgen.train(config, tmp_path / "run", pictures=False, log=lambda s: None)
    assert isinstance(run.model.likelihood, Laplace) and run.model.likelihood.log_scale.shape == (36,)
    loaded = condgen.load_run(tmp_path / "run")
    assert torch.equal(loaded.model.likelihood.log_scale, run.model.likelihood.log_scale)  # saved with the run
    assert not torch.equal(run.model.likelihood.log_scale, torch.zeros(36))  # and trained
    params, x = torch.randn(3, 36), torch.rand(3, 36)
    scale = torch.exp(run.model.likelihood.log_scale)
    expected = -torch.distributions.Laplace(params, scale).log_prob(x).sum(-1)
    assert torch.allclose(run.model.likelihood.nll(params, x), expected, atol=1e-4)
    assert {p.name: p for p in list_plugins()}["laplace-plugin"].likelihoods == ["laplace"]
    with pytest.raises(condgen.ConfigError, match="model.likelihood = 'laplace:2': likelihood 'laplace' takes no "
                                                  "argument, got laplace:2; use laplace"):
        condgen.RunConfig.parse({"model": {"likelihood": "laplace:2"}})


class EpochCounter(condgen.Callback):
    """A third party's callback: counts the epochs it hears of and writes the count beside the run."""

    name = "epoch-counter"

    def on_train_start(self, run, test):
        self.seen = []

    def on_epoch_end(self, run, metrics):
        self.seen.append(metrics["epoch"])

    def on_train_end(self, run, test):
        (run.directory / "epochs-seen.txt").write_text(" ".join(map(str, self.seen)))
        self.log(f"epoch-counter: {len(self.seen)} epochs")


class EpochCounterPlugin:
    @condgen.hookimpl
    def condgen_register_callbacks(self, register):
        register(EpochCounter)


def test_hook_condgen_register_callbacks(register_plugin, tmp_path, capsys):
    register_plugin(ToyData(), "toy-data")
    register_plugin(EpochCounterPlugin(), "counter-plugin")
    assert registry().callbacks.keys() >= {"pictures", "tensorboard", "epoch-counter"}
    assert main(["train", "--dataset", "toy", "--conditioner", "label:num_classes=2", "--epochs", "2",
                 "--log", "epoch-counter", "--no-pictures", "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "epochs-seen.txt").read_text() == "1 2"
    assert "epoch-counter: 2 epochs" in capsys.readouterr().out
    assert condgen.load_run(tmp_path / "run").config.train.log == ["epoch-counter"]
    assert {p.name: p for p in list_plugins()}["counter-plugin"].callbacks == ["epoch-counter"]


def test_every_hook_is_typed_documented_and_tested():
    names = hook_names()
    assert len(names) >= 4, names  # the check sees the hooks
    docs = HOOK_DOCS.read_text()
    tests = {
        node.name
        for path in [*(REPO / "tests").glob("test_*.py"), *(REPO / "plugins").glob("*/tests/test_*.py")]
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef)
    }
    for name in names:
        spec = getattr(hookspecs, name)
        signature = inspect.signature(spec)
        assert inspect.getdoc(spec), f"hook {name} has no docstring"
        # the one rule for a name two plugins register is said where a plugin author reads the hook
        assert "withdrawn" in inspect.getdoc(spec), f"hook {name}: say what happens to a name two plugins register"
        assert signature.return_annotation is not inspect.Signature.empty, f"hook {name}: annotate its return"
        unannotated = [p for p, v in signature.parameters.items() if v.annotation is inspect.Parameter.empty]
        assert not unannotated, f"hook {name}: annotate {unannotated}"
        assert f"\n## {name}\n" in docs, f"{HOOK_DOCS.relative_to(REPO)} has no '## {name}' section"
        assert f"::: condgen.plugin.hookspecs.{name}" in docs, f"{HOOK_DOCS.relative_to(REPO)} does not render {name}"
        assert any(t.startswith(f"test_hook_{name}") for t in tests), f"no test_hook_{name} test"
    documented = {line[3:].strip() for line in docs.splitlines() if line.startswith("## condgen_")}
    assert documented <= set(names), f"{HOOK_DOCS.name} documents hooks that do not exist: {documented - set(names)}"


def test_every_hook_has_one_kinds_table_entry_and_every_entry_a_hook(capsys):
    import condgen.plugin.hookspecs
    from condgen.plugin.registry import KINDS, PluginInfo

    assert hook_names(condgen.plugin.hookspecs) == hook_names()  # condgen.hookspecs re-exports every hook
    assert sorted(kind.hook for kind in KINDS) == hook_names()
    assert len({kind.noun for kind in KINDS}) == len({kind.plural for kind in KINDS}) == len(KINDS)
    row = PluginInfo("x")
    for kind in KINDS:
        assert list(inspect.signature(getattr(hookspecs, kind.hook)).parameters) == ["register"]
        assert getattr(row, kind.plural) == [] and row.as_dict()[kind.plural] == []
    # `condgen plugins` has a column per kind
    assert main(["plugins"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header == ["name", "distribution", "version", *(kind.plural for kind in KINDS), "status"]
