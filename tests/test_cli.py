"""The ``condgen`` command: one-line errors with exit code 2, and the commands on toy data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from condgen.cli import main
from condgen.plugins import get_plugin_manager
from helpers import SignPlugin, ToyData


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module", autouse=True)
def toy_plugins():
    """The toy data set and conditioner, for every test of this module (trained once, below)."""
    pm = get_plugin_manager()
    pm.register(ToyData(), name="toy-data")
    pm.register(SignPlugin(), name="sign-plugin")
    yield
    pm.unregister(name="toy-data")
    pm.unregister(name="sign-plugin")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run trained once through the CLI on the toy data; tests copy it before changing it."""
    tmp = tmp_path_factory.mktemp("cli")
    config = tmp / "label2.yaml"
    config.write_text("conditioners:\n  - name: label\n    config: {num_classes: 2}\n")
    run_dir = tmp / "run"
    code = main(["train", "--dataset", "toy", "--conditioner", "label", "--hidden", "32", "--epochs", "60",
                 "--batch-size", "32", "--device", "cpu", "--out", str(run_dir), "--config", str(config)])
    assert code == 0
    return run_dir


@pytest.fixture
def toy_run(trained, tmp_path):
    return Path(shutil.copytree(trained, tmp_path / "run"))


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_train_writes_run_directory_and_pictures(toy_run):
    names = sorted(p.name for p in toy_run.iterdir())
    assert names == ["checkpoint.safetensors", "config.json", "latent.png", "metrics.jsonl",
                     "reconstructions.png", "samples.png"]


def test_sample_png_and_npy(toy_run, capsys, tmp_path):
    code, out, err = cli(capsys, "sample", str(toy_run), "--condition", "label=all", "--num", "20",
                         "--out", str(tmp_path / "s.npy"))
    assert code == 0, err
    arr = np.load(tmp_path / "s.npy")
    assert arr.shape == (40, 1, 6, 6) and arr.dtype == np.float32
    assert arr.min() >= 0 and arr.max() <= 1
    # the model learnt the toy classes: label 0 is bright on the left, label 1 on the right
    left, right = arr[..., :3].mean(axis=(1, 2, 3)), arr[..., 3:].mean(axis=(1, 2, 3))
    assert (left[:20] > right[:20]).all() and (right[20:] > left[20:]).all()
    code, out, err = cli(capsys, "sample", str(toy_run), "--condition", "label=1", "--out", str(tmp_path / "s.png"))
    assert code == 0 and (tmp_path / "s.png").stat().st_size > 1000


def test_evaluate_json(toy_run, capsys):
    code, out, err = cli(capsys, "evaluate", str(toy_run), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["epoch"] == 60 and result["test_items"] == 128
    assert result["test_neg_elbo"] == pytest.approx(result["test_recon_nll"] + result["test_kl"])
    assert result["label_elbo_accuracy"] > 0.9  # two easy classes: the model tells them apart


@pytest.mark.parametrize(
    "condition, message",
    [
        ("label=12", "label='12': class 12 is out of range; allowed are integers 0..1"),
        ("label=five", "label='five': 'five' is not a class number; allowed are integers 0..1"),
        ("colour=red", "this model has no conditioner 'colour'; its conditioners are ['label']"),
        ("label", "--condition 'label' must look like NAME=VALUE"),
    ],
)
def test_bad_conditions_are_one_line(toy_run, capsys, tmp_path, condition, message):
    code, out, err = cli(capsys, "sample", str(toy_run), "--condition", condition, "--out", str(tmp_path / "x.png"))
    assert code == 2
    assert message in one_error_line(err)


def test_other_sample_errors(toy_run, capsys, tmp_path):
    code, _, err = cli(capsys, "sample", str(toy_run), "--out", str(tmp_path / "x.png"))
    assert code == 2 and "a condition for 'label' is needed" in one_error_line(err)
    code, _, err = cli(capsys, "sample", str(toy_run), "--condition", "label=1", "--out", str(tmp_path / "x.jpg"))
    assert code == 2 and "must end in .png" in one_error_line(err)
    code, _, err = cli(capsys, "sample", str(toy_run), "--condition", "label=1", "--num", "0", "--out", "x.png")
    assert code == 2 and "--num must be at least 1, got 0" in one_error_line(err)
    code, _, err = cli(capsys, "sample", str(toy_run), "--condition", "label=1",
                       "--out", str(tmp_path / "no" / "dir" / "x.npy"))
    assert code == 2 and "cannot write" in one_error_line(err)


def test_train_errors(capsys, tmp_path):
    code, _, err = cli(capsys, "train", "--conditioner", "colour", "--dataset", "toy", "--out", str(tmp_path / "r"))
    assert code == 2 and "unknown conditioner 'colour'; installed conditioners: label, sign" in one_error_line(err)
    code, _, err = cli(capsys, "train", "--latent-dim", "-1", "--out", str(tmp_path / "r"))
    assert code == 2 and "model.latent_dim = -1: Input should be greater than or equal to 0" in one_error_line(err)
    code, _, err = cli(capsys, "train", "--dataset", "toy", "--device", "cuda", "--out", str(tmp_path / "r"))
    assert code == 2 and "sees no CUDA device; use --device cpu or --device auto" in one_error_line(err)
    code, _, err = cli(capsys, "train", "--dataset", "imagenet", "--out", str(tmp_path / "r"))
    assert code == 2 and "unknown dataset 'imagenet'; registered datasets: mnist, toy" in one_error_line(err)


def test_resume_refuses_changed_flags(toy_run, capsys):
    code, _, err = cli(capsys, "train", "--resume", "--latent-dim", "7", "--out", str(toy_run))
    assert code == 2 and "model.latent_dim is 2, not 7" in one_error_line(err)
    code, out, err = cli(capsys, "train", "--resume", "--epochs", "61", "--no-pictures", "--out", str(toy_run))
    assert code == 0, err
    assert [json.loads(ln)["epoch"] for ln in (toy_run / "metrics.jsonl").read_text().splitlines()] == list(range(1, 62))


def test_debug_shows_the_traceback(capsys, tmp_path):
    from condgen.errors import CondgenError

    with pytest.raises(CondgenError):
        main(["sample", str(tmp_path), "--condition", "label=1", "--out", "x.png", "--debug"])


def test_plain_vae_without_conditioners(capsys, tmp_path):
    code, _, err = cli(capsys, "train", "--dataset", "toy", "--hidden", "16", "--epochs", "2", "--device", "cpu",
                       "--out", str(tmp_path / "vae"))
    assert code == 0, err
    assert (tmp_path / "vae" / "samples.png").exists()
    code, out, err = cli(capsys, "sample", str(tmp_path / "vae"), "--num", "5", "--out", str(tmp_path / "v.npy"))
    assert code == 0, err
    assert np.load(tmp_path / "v.npy").shape == (5, 1, 6, 6)


def test_two_conditioners_compose_in_config_order(capsys, tmp_path):
    config = tmp_path / "two.json"
    config.write_text(json.dumps({"conditioners": [{"name": "sign"}, {"name": "label", "config": {"num_classes": 2}}]}))
    code, _, err = cli(capsys, "train", "--dataset", "toy", "--config", str(config), "--hidden", "16",
                       "--epochs", "2", "--device", "cpu", "--no-pictures", "--out", str(tmp_path / "two"))
    assert code == 0, err
    from condgen import load_run

    run = load_run(tmp_path / "two", device="cpu")
    assert run.model.order == ["sign", "label"] and run.model.e_dim == 3 + 2
    # every combination of the given values is one row: 2 signs x 2 labels, 3 samples each
    code, out, err = cli(capsys, "sample", str(tmp_path / "two"), "--condition", "label=0,1",
                         "--condition", "sign=-1,1", "--num", "3", "--out", str(tmp_path / "t.npy"))
    assert code == 0, err
    assert np.load(tmp_path / "t.npy").shape == (12, 1, 6, 6)
    grid, labels = run.condition_grid(run.parse_conditions(["label=0,1", "sign=-1,1"]))
    assert labels == ["sign=-1 label=0", "sign=-1 label=1", "sign=1 label=0", "sign=1 label=1"]
    code, _, err = cli(capsys, "sample", str(tmp_path / "two"), "--condition", "label=0",
                       "--out", str(tmp_path / "x.png"))
    assert code == 2 and "a condition for 'sign' is needed" in one_error_line(err)
