"""Where a colour-digit run loses the digit's hue: in what it is given, or in how it draws it.

For the first ``--items`` test items of a trained run (``benchmark.py --work DIR`` keeps it as ``DIR/run``), the
digit hue measured (``make_data.measure``) against the one asked for, as Pearson r:

- ``reconstruction``: z from the encoder, the item's own conditions: what the decoder draws when it is told
  everything, the colour through z as well as through c;
- ``reconstruction, another digit hue``: the same z, the digit hue of another item (a fixed permutation), against
  the hue asked for and against the item's own: which of the two the drawing follows;
- ``top component`` (a mixture likelihood only): each element's most probable component's location instead of the
  mixture's mean, to tell a model that knows the colour but blends it from one that does not know it::

    python examples/colour_digits/diagnose.py RUN_DIR [--data FILE.npz] [--items 300]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import condgen

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from benchmark import load_test, pearson  # noqa: E402
from make_data import default_path, measure  # noqa: E402


@torch.no_grad()
def diagnose(run: condgen.Run, test: dict[str, torch.Tensor], items: int) -> dict[str, float]:
    batch = {k: v[:items] for k, v in test.items()}
    n = batch["label"].shape[0]
    model = run.model.eval()
    swapped = {**batch, "fg_hue": batch["fg_hue"][torch.randperm(n, generator=torch.Generator().manual_seed(1))]}
    e = model.embed(run.conditions_from_batch(batch), n)
    e_swapped = model.embed(run.conditions_from_batch(swapped), n)
    mu, _ = model.encode(batch["image"].to(run.device), e)
    asked, other = batch["fg_hue"].float(), swapped["fg_hue"].float()

    def drawn(params: torch.Tensor) -> dict[str, torch.Tensor]:
        return measure(model.likelihood.mean(params).reshape(n, *model.data_shape).cpu())

    params = model.decode(mu, e)
    own, changed = drawn(params), drawn(model.decode(mu, e_swapped))
    out = {"reconstruction": pearson(asked, own["fg_hue"]),
           "reconstruction, another digit hue: r against the hue asked for": pearson(other, changed["fg_hue"]),
           "reconstruction, another digit hue: r against the item's own": pearson(asked, changed["fg_hue"]),
           "background, reconstruction": pearson(batch["bg_hue"].float(), own["bg_hue"])}
    k = getattr(model.likelihood, "components", None)
    if k:  # the mixture's layout: K logits, K locations, K log-scales, each D numbers
        by_parameter = params.unflatten(-1, (3 * k, -1))
        top = by_parameter[:, :k].argmax(1, keepdim=True)
        located = by_parameter[:, k:2 * k].gather(1, top).squeeze(1).clamp(0, 1).reshape(n, *model.data_shape)
        out["top component"] = pearson(asked, measure(located.cpu())["fg_hue"])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--data", default=None, help="the colour-digit .npz (default: the one benchmark.py made)")
    parser.add_argument("--items", type=int, default=300)
    args = parser.parse_args()
    run = condgen.load_run(args.run_dir, device="cpu")
    for name, r in diagnose(run, load_test(Path(args.data) if args.data else default_path()), args.items).items():
        print(f"{name}: r = {r:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
