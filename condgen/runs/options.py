"""The options of :class:`~condgen.runs.config.RunConfig`'s fields: its conditioners (``--conditioner
[INSTANCE=]NAME[:KEY=VALUE,...]``, read by :func:`parse_conditioner_option`), and the fields of
:class:`~condgen.runs.config.ModelConfig` and :class:`~condgen.runs.config.TrainConfig`: each field's flag
and its one help text.

The configs take their field descriptions from here, and ``condgen train`` its flags; plain Python, so
building the command line imports no pydantic. A field without a flag is declared too, marked
``config_file_only``, so every field is accounted for (tests/test_config.py checks that).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..common.errors import ConfigError
from ..common.options import Option, parse_setting, split_top_level

#: The devices a run may use, said once for ``train.device`` and the commands that load a run.
DEVICE_HELP = "cpu, cuda, cuda:N or auto (the default)"
#: ``--device`` of the commands that load a run (``sample``, ``evaluate``, plugins' commands).
DEVICE = Option("device", DEVICE_HELP, default="auto")


def dropout_flag(text: str) -> Any:
    """``0.1`` -> 0.1 and ``label=0.1,regression=0.2`` -> a dict; anything else is left for the config to refuse."""
    try:
        if "=" not in text:
            return float(text)
        pairs = [(name.strip(), float(p)) for name, p in (item.split("=") for item in text.split(","))]
    except ValueError:
        return text
    names = [name for name, _ in pairs]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:  # as a --conditioner setting given twice is: which one was meant cannot be guessed
        raise argparse.ArgumentTypeError(f"{text!r} gives conditioner {twice!r} twice; give each once")
    return dict(pairs)


MODEL_OPTIONS = (
    Option("latent_dim", "latent size (seed: 2); 0 is the deterministic baseline p(x|c): no latent, no KL",
           section="model", type=int),
    Option("arch", "mlp (the seed: an MLP on the flattened data), conv (convolutions that halve the resolution "
           "per stage, for images (C, H, W) of any size) or a plugin's (`condgen plugins` lists them)",
           section="model"),
    Option("channels", "conv: each stage's channels, one stage per number (default 32 64)", section="model",
           type=int, nargs="+", metavar="C"),
    Option("hidden", "encoder hidden widths (seed: 512); with conv, the dense layers after the convolutions",
           section="model", type=int, nargs="+", metavar="W"),
    Option("decoder_hidden", "decoder hidden widths (default: the encoder's, reversed)", section="model",
           type=int, nargs="+", metavar="W"),
    Option("activation", "relu (the seed), elu, gelu, silu, tanh or leaky_relu", section="model"),
    Option("likelihood", "bernoulli (data in [0, 1]; the seed); gaussian (real values), gaussian-pixel (its std "
           "from the decoder, per element) or gaussian-shared (sigma-VAE: one calibrated std per channel); logistic "
           "(the discretised logistic of 8-bit images' 256 levels) or logistic-mixture:K (a mixture of K of them); "
           "evaluate reports bits per dimension for the last two", section="model", metavar="NAME[:ARG]"),
    Option("gaussian_std", "fixed observation std of the gaussian likelihood (default: one learned per feature)",
           section="model", type=float, metavar="STD"),
    Option("gaussian_min_std", "the smallest std of gaussian-pixel and gaussian-shared, in the data's units "
           "(default 1/255: one level of 8-bit pixels in [0, 1])", section="model", type=float, metavar="STD"),
    Option("prior", "standard (p(z|c) = N(0, I), the seed) or conditional (Sohn et al.'s prior network p(z|c))",
           section="model"),
    Option("prior_hidden", "hidden widths of the conditional prior network (default: the encoder's)",
           section="model", type=int, nargs="+", metavar="W"),
)

TRAIN_OPTIONS = (
    Option("epochs", "passes over the training split (seed: 20)", section="train", type=int),
    Option("batch_size", "training items per step (seed: 50)", section="train", type=int),
    Option("eval_batch_size", "test items per batch when evaluating (default 1000); smaller needs less memory, "
           "the figures stay the same", section="train", type=int, metavar="N"),
    Option("lr", "learning rate (seed: 1e-3)", section="train", type=float),
    Option("optimizer", "adam (the seed) or adamw", section="train"),
    Option("weight_decay", "the optimizer's weight decay (default 0)", section="train", type=float),
    Option("lr_schedule", "constant (the default) or cosine (from lr down to 0 over the epochs)", section="train"),
    Option("objective", "elbo (the CVAE bound, the seed) or hybrid: (1 - gsnn_weight) * bound + gsnn_weight * "
           "GSNN term (Sohn et al.'s CVAE + GSNN)", section="train"),
    Option("gsnn_weight", "weight of the GSNN term in the hybrid objective (default 0.5)", section="train",
           type=float),
    Option("grad_clip", "clip the gradients' global norm to NORM before each step (default: none); for "
           "--likelihood logistic, whose gradients can be far larger than a Bernoulli's", section="train", type=float,
           metavar="NORM"),
    Option("precision", "fp32 (the default) or bf16: the networks' forward pass in bfloat16 under autocast (the "
           "weights, the likelihood and the KL stay fp32); for GPUs with bf16 tensor cores; evaluation is fp32",
           section="train"),
    Option("condition_dropout", "probability that a training item's condition is left out (replaced by a learned "
           "'absent' embedding): P for every conditioner, or per conditioner (NAME=P,...; in a config file "
           "{name: p}; NAME=0 learns the absent condition from missing values alone); a model trained with it "
           "can be sampled with that condition left out",
           section="train", type=dropout_flag, metavar="P|NAME=P,..."),
    Option("seed", "random seed of the initial weights, the batches and the noise (default 0)", section="train",
           type=int),
    Option("device", DEVICE_HELP, section="train"),
    Option("log", "a callback that watches the training (repeatable): tensorboard (each epoch's terms, learning "
           "rate, seconds and a grid of samples, into RUN_DIR/tensorboard/; pip install 'condgen[tensorboard]') or "
           "a plugin's (`condgen plugins` lists them); the pictures are drawn unless --no-pictures", section="train",
           action="append", metavar="NAME"),
)


def parse_conditioner_option(text: str) -> dict[str, Any]:
    """``--conditioner [INSTANCE=]NAME[:KEY=VALUE,...]`` -> ``{"name": NAME, "instance": INSTANCE, "config":
    {KEY: VALUE, ...}}`` (``instance`` only where given).

    ``INSTANCE=`` names this conditioner in the model, so one plugin's conditioner may be listed several times
    (``colour=label:field=colour``); without it the conditioner is called ``NAME``. A value that starts with
    ``[``, ``{`` or ``"`` is read as JSON (``[64, 64]``, ``"a,b"``); ``null`` is None; anything else is a
    string that the conditioner's config converts (``16``, ``0.5``, ``true``, ``learned``), e.g.
    ``label:embedding=learned,embed_dim=16``.
    """
    head, _, settings = text.partition(":")
    instance, named, name = head.partition("=") if "=" in head else ("", "", head)
    name, instance = name.strip(), instance.strip()
    if not name or (named and not instance):
        raise ConfigError(f"--conditioner {text!r}: give a conditioner name, e.g. label or label:embed_dim=16, "
                          "and an instance name before it to list one several times: colour=label:field=colour")
    config: dict[str, Any] = {}
    raw: dict[str, str] = {}
    for item in split_top_level(settings) if settings.strip() else []:
        if "=" not in item and raw:  # "targets=ink,slant": a list typed with the comma that separates settings
            last = list(raw)[-1]
            listed = json.dumps([raw[last], *[i.strip() for i in split_top_level(settings)[len(raw):]
                                                if "=" not in i]]).replace(" ", "")
            raise ConfigError(f"--conditioner {text!r}: setting {item.strip()!r} must look like KEY=VALUE; a comma "
                              f"separates settings, so give a list as JSON: {name}:{last}={listed}")
        key, value = parse_setting(item, f"--conditioner {text!r}", _settings_example(name))
        raw[key] = item.partition("=")[2].strip()
        if key in config:
            raise ConfigError(f"--conditioner {text!r}: setting {key!r} is given twice")
        config[key] = value
    return {"name": name, **({"instance": instance} if named else {}), "config": config}


def _settings_example(name: str) -> str:
    """``label:num_classes=10,field=label``: conditioner ``name``'s required settings, then its defaults, two in all,
    for an error's example (``KEY=VALUE`` where it is not installed), and where to read them all."""
    fields: list[str] = []
    try:
        from ..plugin.registry import registry

        config = registry().conditioners[name].Config
        for field, info in config.model_fields.items():  # the required ones first: they must be given
            if info.is_required():
                fields.append(f"{field}=...")
        for field, info in config.model_fields.items():
            default = None if info.is_required() else info.get_default(call_default_factory=True)
            if default is None or len(fields) >= 2:
                continue
            try:
                shown = default if isinstance(default, str) else json.dumps(default).replace(" ", "")
            except (TypeError, ValueError):  # a default JSON cannot show
                continue
            if len(shown) <= 30:  # an example, not a listing
                fields.append(f"{field}={shown}")
    except Exception:  # noqa: BLE001 - an unknown or broken conditioner: the error that follows names it
        fields = ["KEY=VALUE"]
    return f"{name}:{','.join(fields or ['KEY=VALUE'])}; `condgen plugins {name}` lists the settings"


def _lay_conditioners(listed: Any, texts: list[str]) -> list[dict[str, Any]]:
    """``--conditioner`` flags replace the config's list; one in both (the same conditioner under the same
    instance name) keeps the config's settings with the flag's laid over them."""
    def key(spec: dict[str, Any]) -> tuple[Any, Any]:
        return spec.get("name"), spec.get("instance") or spec.get("name")

    known = {key(c): c for c in listed if isinstance(c, dict) and "name" in c} if isinstance(listed, list) else {}
    specs = []
    for text in texts:
        given = parse_conditioner_option(text)
        base = known.get(key(given), {}).get("config") or {}
        specs.append({**given, "config": {**base, **given["config"]}})
    return specs


#: :class:`~condgen.runs.config.RunConfig`'s own field: its conditioners.
RUN_OPTIONS = (
    Option("conditioners", "condition on NAME (repeatable), with settings, e.g. "
           "label:embedding=learned,embed_dim=16; INSTANCE= before it names it in the model, so one plugin's "
           "conditioner may be listed several times: colour=label:field=colour", section="run", flag="--conditioner",
           action="append", metavar="[INSTANCE=]NAME[:KEY=VALUE,...]", merge=_lay_conditioners),
)
