"""A model folder to share: ``condgen export RUN_DIR OUT_DIR``.

The folder has the layout that model hubs take: ``model.safetensors`` (the weights alone, under the names
``model.state_dict()`` gives), ``config.json`` (the checkpoint's header without the training state: the
config, the data shape, each conditioner's plugin, distribution, version and fitted state) and a
``README.md`` model card. :func:`condgen.load_run` and ``condgen sample`` read it back
(:func:`condgen.runs.store.read_run`); nothing of the optimizer goes in, so it cannot be resumed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from .._version import __version__
from ..common.errors import CondgenError
from ..common.files import access_error, write_atomic, write_text_atomic
from .rundir import check_out_path, kept_evaluation
from .store import EXPORT_CONFIG_NAME, EXPORT_FORMAT, EXPORT_WEIGHTS_NAME, MODEL_PREFIX, StoredRun, read_run

CARD_NAME = "README.md"
#: The training state a checkpoint's header holds that a shared model does not.
TRAINING_STATE = ("optimizer", "complete", "world_size", "metrics")


def export_run(source: str | Path, out: str | Path) -> Path:
    """Write the model folder of the run (directory or checkpoint) ``source`` into ``out``, a new or empty
    directory; the folder written."""
    out = check_out_path(out, "export directory (OUT_DIR)", "models/my-model")
    stored = read_run(source, model_only=True)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CondgenError(f"{str(out)!r} is not a new or empty directory; export writes only into one, so it "
                           "overwrites nothing: choose another OUT_DIR")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise access_error("export directory", out, exc, verb="make") from None
    # read with model_only: every tensor is a weight of the model
    weights = {k.removeprefix(MODEL_PREFIX): v.contiguous() for k, v in stored.tensors.items()}
    write_atomic(out / EXPORT_WEIGHTS_NAME, lambda tmp: save_file(weights, str(tmp), metadata={"format": "pt"}),
                 what="model weights")
    header = {k: v for k, v in stored.meta.to_json().items() if k not in TRAINING_STATE}
    header = {"format": EXPORT_FORMAT, **header, "exported_with": __version__}
    write_text_atomic(out / EXPORT_CONFIG_NAME, json.dumps(header, indent=2) + "\n", what="model config")
    write_text_atomic(out / CARD_NAME, model_card(stored, kept_evaluation(stored.path.parent), out), what="model card")
    return out


def model_card(stored: StoredRun, evaluation: dict[str, Any] | None, out: Path) -> str:
    """The model card: what the model is, what it was trained on, its figures and how to sample from it."""
    config, meta = stored.config, stored.meta
    model, train, data = config.model, config.train, config.data
    conds = ", ".join(f"`{c.instance_name}`" for c in meta.conditioners) or "none"
    lines = [
        "---",
        "library_name: condgen",
        "tags: [cvae, conditional-vae, condgen]",
        "---",
        f"# {out.name}",
        "",
        f"A conditional variational autoencoder (Sohn et al., 2015) trained with condgen {meta.condgen_version}, "
        f"conditioned on {conds}.",
        "",
        "## Training",
        "",
        "| | |",
        "|---|---|",
        f"| data set | `{data.dataset}` |",
        f"| item shape | {tuple(meta.data_shape)} |",
        f"| architecture | `{model.arch}`, latent dim {model.latent_dim}, hidden {list(model.hidden)} |",
        f"| likelihood | `{model.likelihood}` |",
        f"| prior | `{model.prior}` |",
        f"| objective | `{train.objective}` |",
        f"| epochs trained | {meta.epoch} of {train.epochs} |",
        f"| seed | {train.seed} |",
        "",
        "## Conditioners",
        "",
        "| name | conditioner | plugin | distribution | version |",
        "|---|---|---|---|---|",
        *(f"| `{c.instance_name}` | `{c.name}` | {c.plugin or '-'} | {c.distribution or '-'} | {c.version or '-'} |"
          for c in meta.conditioners),
        "",
        "## Evaluation",
        "",
    ]
    if evaluation is None:
        lines.append("Not evaluated (`condgen evaluate RUN_DIR` keeps its figures for this card).")
    elif evaluation.get("epoch") != meta.epoch:  # evaluated, then trained on with --resume
        lines.append(f"The kept figures are of epoch {evaluation.get('epoch')}, not of this epoch-{meta.epoch} model, "
                     "so they are left out (`condgen evaluate RUN_DIR` again, then export).")
    else:
        lines += [f"On {evaluation.get('test_items', '?')} test items, {evaluation.get('is_samples', '?')} importance "
                  f"samples, computed {evaluation.get('evaluated_at', '?')}:", "", "| figure | value |", "|---|---:|"]
        lines += [f"| `{k}` | {v:.4f} |" for k, v in evaluation.items() if isinstance(v, float)]
    distributions = sorted({c.distribution for c in meta.conditioners if c.distribution})
    sample = ["condgen sample", out.name, *(f"--condition {c.instance_name}=..." for c in meta.conditioners),
              "--num 16 --seed 0 --out samples.png"]
    lines += [
        "",
        "## Use",
        "",
        "```bash",
        " ".join(["pip install condgen", *distributions]),
        " ".join(sample),
        "```",
        "",
        "```python",
        "import condgen",
        f"run = condgen.load_run({out.name!r})",
        "images = run.sample({...}, num=16, seed=0)   # one value per conditioner, in its own units",
        "```",
        "",
        "The weights are in `model.safetensors` (no pickle: loading runs no code), the rest in `config.json`.",
        "",
    ]
    return "\n".join(lines)
