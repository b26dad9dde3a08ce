"""Test helpers: a tiny synthetic data set and conditioner, provided as plugin objects."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

import torch
from torch import Tensor, nn

import condgen
from condgen import ConditionError, Conditioner, DataSplits


def make_toy_splits(
    n_train: int = 512, n_test: int = 128, seed: int = 0, classes: dict[str, list[str]] | None = None
) -> DataSplits:
    """Two classes of 1x6x6 images in [0, 1]: class 0 bright on the left, class 1 on the right; ``classes``
    names them (:attr:`condgen.DataSplits.classes`), e.g. :data:`TOY_CLASS_NAMES`."""
    gen = torch.Generator().manual_seed(seed)

    def split(n: int) -> dict[str, Tensor]:
        label = torch.randint(0, 2, (n,), generator=gen)
        image = 0.1 * torch.rand(n, 1, 6, 6, generator=gen)
        left = label == 0
        image[left, :, :, :3] += 0.8
        image[~left, :, :, 3:] += 0.8
        return {"image": image.clamp(0, 1), "label": label, "value": label.float() * 2 - 1}

    return DataSplits(train=split(n_train), test=split(n_test), classes=dict(classes or {}))


#: The toy classes' names: class 0 is bright on the left, class 1 on the right.
TOY_CLASS_NAMES = {"label": ["left", "right"]}


class ToyData:
    """A plugin that provides the ``toy`` data set."""

    @condgen.hookimpl
    def condgen_register_datasets(self, register):
        register("toy", lambda config: make_toy_splits())


class NamedToyData:
    """A plugin that provides the ``toy-named`` data set: the toy data, its classes named ``left`` and ``right``."""

    @condgen.hookimpl
    def condgen_register_datasets(self, register):
        register("toy-named", lambda config: make_toy_splits(classes=TOY_CLASS_NAMES))


class Scale(nn.Module):
    """Divides by a fitted scale: the standardisation lives in the embedding, not in the conditions."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, c: Tensor) -> Tensor:
        return c / self.scale


class SignConditioner(Conditioner):
    """A minimal test conditioner over the toy data's real-valued ``value`` field: ``(B, 1)`` floats,
    in the data's own units whether read from data, typed or given from Python."""

    name = "sign"
    scale = 1.0  # learnt by fit(): the largest |value| in the training split

    @property
    def condition_shape(self) -> tuple[int, ...]:
        return (1,)

    def fit(self, train: Mapping[str, Tensor]) -> None:
        self.scale = float(self.require_field(train, "value").abs().max()) * 4.0

    def state(self) -> dict:
        return {"scale": self.scale}

    def load_state(self, state) -> None:
        self.scale = state["scale"]

    def condition_from_batch(self, batch: Mapping[str, Tensor], generator=None) -> Tensor:
        return self.require_field(batch, "value").float().unsqueeze(1)

    def check_condition(self, c: Tensor) -> Tensor:
        if c.dim() != 2 or c.shape[1] != 1:
            raise ConditionError(f"sign condition must have shape (B, 1), got {tuple(c.shape)}")
        return c.float()

    def parse_condition(self, text: str) -> Tensor:
        try:
            return torch.tensor([[float(v)] for v in text.split(",")])
        except ValueError:
            raise ConditionError(f"sign={text!r} must be numbers") from None

    @property
    def embed_dim(self) -> int:
        return 3

    def build_embedding(self) -> nn.Module:
        return nn.Sequential(Scale(self.scale), nn.Linear(1, 3))


class SignPlugin:
    @condgen.hookimpl
    def condgen_register_conditioners(self, register):
        register(SignConditioner)


def train_with_toy_data(config: condgen.RunConfig, out, name: str):
    """Train ``config`` into ``out`` with the toy data set registered (as plugin ``name``) only while it trains,
    and return ``out``: for a module's shared run, as a test's own ``toy`` fixture registers the same data set,
    and a name two plugins register at once is withdrawn (the registry's one policy)."""
    from condgen.plugin.registry import get_plugin_manager

    pm = get_plugin_manager()
    pm.register(ToyData(), name=name)
    try:
        condgen.train(config, out, pictures=False, log=lambda s: None)
    finally:
        pm.unregister(name=name)
    return out


def inpaint_config(*others: dict) -> condgen.RunConfig:
    """A small one-epoch run over the toy data, conditioned on ``inpaint`` and the conditioner specs ``others``."""
    return condgen.RunConfig.parse({
        "conditioners": [{"name": "inpaint", "config": {"hidden": 8, "embed_dim": 4}}, *others],
        "model": {"latent_dim": 2, "hidden": [16]}, "data": {"dataset": "toy"},
        "train": {"epochs": 1, "device": "cpu"}})


def toy_config(**train: object) -> condgen.RunConfig:
    """A small, fast config over the toy data, conditioned on the toy label."""
    return condgen.RunConfig.parse(
        {
            "conditioners": [{"name": "label", "config": {"num_classes": 2}}],
            "model": {"latent_dim": 2, "hidden": [32]},
            "data": {"dataset": "toy"},
            "train": {"epochs": 3, "batch_size": 32, "device": "cpu", **train},
        }
    )


class LeftConditioner(Conditioner):
    """Condition on the left half of a toy image ``(B, 1, 6, 6)`` (right half zeroed), which it gives:
    only the right half of x is scored. A condition may be one image ``(6, 6)`` or ``(1, 6, 6)``, or a
    stack ``(K, 1, 6, 6)``, so it turns Python values into conditions itself."""

    name = "left"

    @property
    def condition_shape(self) -> tuple[int, ...]:
        return (1, 6, 6)

    @staticmethod
    def left(like: Tensor) -> Tensor:
        mask = torch.zeros_like(like)
        mask[..., :3] = 1.0
        return mask

    def condition_from_batch(self, batch: Mapping[str, Tensor], generator=None) -> Tensor:
        image = self.require_field(batch, "image")
        return image * self.left(image)

    def check_condition(self, c: Tensor) -> Tensor:
        if c.dim() != 4 or tuple(c.shape[1:]) != (1, 6, 6):
            raise ConditionError(f"left condition must have shape (B, 1, 6, 6), got {tuple(c.shape)}")
        return c.float() * self.left(c.float())

    def conditions_from_value(self, value) -> Tensor:
        c = torch.as_tensor(value, dtype=torch.float32)
        while c.dim() < 4:  # (6, 6) and (1, 6, 6) are one image
            c = c.unsqueeze(0)
        return self.check_condition(c)

    def parse_condition(self, text: str) -> Tensor:
        raise ConditionError("left conditions are images; give them from Python")

    def given_part(self, c: Tensor) -> Tensor:
        return self.left(c)

    def given_values(self, c: Tensor) -> Tensor:
        return c

    def condition_picture(self, c: Tensor) -> Tensor:
        return c

    def example_conditions(self, test, generator) -> Tensor:
        return self.condition_from_batch({"image": test["image"][:3]})

    @property
    def embed_dim(self) -> int:
        return 4

    def build_embedding(self) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(36, 4))


class LeftPlugin:
    @condgen.hookimpl
    def condgen_register_conditioners(self, register):
        register(LeftConditioner)


def _echo_arguments(parser) -> None:
    parser.add_argument("words", nargs="*")


def _echo(args) -> int:
    if args.words == ["fail"]:
        raise condgen.CondgenError("echo was told to fail")
    print("echo:", " ".join(args.words))
    return 0


class EchoCommandPlugin:
    """A plugin that adds ``condgen echo WORDS``."""

    @condgen.hookimpl
    def condgen_register_commands(self, register):
        register(condgen.Command(name="echo", help="print the words", add_arguments=_echo_arguments, run=_echo))


class ClashingCommandPlugin:
    @condgen.hookimpl
    def condgen_register_commands(self, register):
        register(condgen.Command(name="train", help="mine", add_arguments=_echo_arguments, run=_echo))


def condgen_cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    """``python -m condgen ARGS`` in a fresh process (the installed entry points only); with ``ok``, it must succeed."""
    result = subprocess.run([sys.executable, "-m", "condgen", *args], capture_output=True, text=True,
                            env=dict(os.environ), timeout=600)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def fake_distribution(root, module_body: str, dist: str = "broken-plugin", entry_point: str = "broken",
                      module: str = "broken_mod", version: str = "9.9") -> None:
    """An installed-looking distribution ``dist`` under ``root`` (put it on PYTHONPATH) whose entry point
    ``entry_point`` in the group ``condgen`` is the module ``module``, holding ``module_body``."""
    import textwrap
    from pathlib import Path

    root = Path(root)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[condgen]\n{entry_point} = {module}\n")
    (root / f"{module}.py").write_text(textwrap.dedent(module_body))


def one_error_line(capsys) -> str:
    """What a command wrote to stderr, asserted to be one ``error: ...`` line."""
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]

