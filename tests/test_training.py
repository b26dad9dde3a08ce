"""Training on toy data: reproducibility, metrics, checkpoints, resume, numerical faults."""

from __future__ import annotations

import json

import pytest
import torch

import condgen
from condgen.checkpoint import CHECKPOINT_NAME, CheckpointError, read_checkpoint, save_checkpoint
from condgen.errors import CondgenError
from condgen.training import NumericalError

from helpers import make_toy_splits, toy_config


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def weights(run):
    return {k: v.clone() for k, v in run.model.state_dict().items()}


def test_metrics_have_one_line_per_epoch_and_loss_falls(toy, tmp_path):
    condgen.train(toy_config(epochs=4), tmp_path / "run", pictures=False)
    rows = metrics(tmp_path / "run")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    for key in ("train_seconds", "train_loss", "test_neg_elbo", "test_recon_nll", "test_kl"):
        assert all(isinstance(r[key], float) for r in rows), key
    assert all(0 < r["train_seconds"] < 60 for r in rows)
    assert rows[-1]["test_neg_elbo"] < rows[0]["test_neg_elbo"] - 1.0
    assert rows[-1]["test_neg_elbo"] == pytest.approx(rows[-1]["test_recon_nll"] + rows[-1]["test_kl"])
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["hidden"] == [32] and saved["conditioners"][0]["name"] == "label"


def test_same_seed_same_run_other_seed_other_run(toy, tmp_path):
    a = condgen.train(toy_config(seed=7), tmp_path / "a", pictures=False)
    b = condgen.train(toy_config(seed=7), tmp_path / "b", pictures=False)
    c = condgen.train(toy_config(seed=8), tmp_path / "c", pictures=False)
    wa, wb, wc = weights(a), weights(b), weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    strip = lambda rows: [{k: v for k, v in r.items() if "seconds" not in k} for r in rows]  # noqa: E731
    assert strip(metrics(tmp_path / "a")) == strip(metrics(tmp_path / "b"))


def test_checkpoint_round_trip_gives_identical_outputs(toy, tmp_path):
    run = condgen.train(toy_config(), tmp_path / "run", pictures=False)
    loaded = condgen.load_run(tmp_path / "run", device="cpu")
    assert loaded.epoch == 3 and loaded.config == run.config
    assert list(loaded.conditioners) == ["label"]
    a = run.sample({"label": 1}, num=6, seed=3)
    b = loaded.sample({"label": 1}, num=6, seed=3)
    assert torch.equal(a, b)
    x = make_toy_splits().test["image"][:5]
    conds = {"label": torch.tensor([0, 1, 0, 1, 1])}
    assert torch.equal(run.model.reconstruct(x, conds), loaded.model.reconstruct(x, conds))
    assert not list(tmp_path.joinpath("run").glob("*.tmp"))  # the atomic write left nothing behind
    _, meta = read_checkpoint(tmp_path / "run" / CHECKPOINT_NAME, load_tensors=False)
    assert meta["conditioners"][0] == {
        "name": "label", "plugin": "label", "distribution": "condgen-label", "version": "0.1.0", "state": {},
    }
    assert meta["config"]["model"]["latent_dim"] == 2 and meta["complete"] is True


def test_resume_continues_bit_for_bit(toy, tmp_path):
    full = condgen.train(toy_config(epochs=4), tmp_path / "full", pictures=False)
    condgen.train(toy_config(epochs=2), tmp_path / "part", pictures=False)
    # resuming may raise the number of epochs; the result equals the uninterrupted run
    resumed = condgen.train(toy_config(epochs=4), tmp_path / "part", resume=True, pictures=False)
    wf, wr = weights(full), weights(resumed)
    assert all(torch.equal(wf[k], wr[k]) for k in wf)
    assert [r["epoch"] for r in metrics(tmp_path / "part")] == [1, 2, 3, 4]
    assert [r["test_neg_elbo"] for r in metrics(tmp_path / "part")] == [r["test_neg_elbo"] for r in metrics(tmp_path / "full")]


def test_resume_drops_metric_lines_of_an_epoch_that_was_not_saved(toy, tmp_path):
    condgen.train(toy_config(epochs=2), tmp_path / "run", pictures=False)
    with (tmp_path / "run" / "metrics.jsonl").open("a") as fh:  # a crash after logging epoch 3
        fh.write(json.dumps({"epoch": 3, "train_loss": 1.0}) + "\n")
    condgen.train(None, tmp_path / "run", resume=True, pictures=False)
    assert [r["epoch"] for r in metrics(tmp_path / "run")] == [1, 2]


def test_resume_refuses_a_changed_model(toy, tmp_path):
    condgen.train(toy_config(epochs=1), tmp_path / "run", pictures=False)
    changed = toy_config(epochs=2).model_copy(update={"model": condgen.ModelConfig(latent_dim=5, hidden=[32])})
    with pytest.raises(CondgenError, match=r"model.latent_dim is 2, not 5; only train.epochs and train.device"):
        condgen.train(changed, tmp_path / "run", resume=True, pictures=False)


def test_new_run_never_overwrites_an_old_one(toy, tmp_path):
    condgen.train(toy_config(epochs=1), tmp_path / "run", pictures=False)
    with pytest.raises(CondgenError, match="already holds a run; continue it with --resume"):
        condgen.train(toy_config(epochs=1), tmp_path / "run", pictures=False)
    with pytest.raises(CondgenError, match="no checkpoint.safetensors in"):
        condgen.train(toy_config(), tmp_path / "empty", resume=True, pictures=False)


def test_nan_loss_stops_with_epoch_and_step_and_keeps_last_checkpoint(toy, tmp_path):
    run_dir = tmp_path / "run"
    condgen.train(toy_config(epochs=1), run_dir, pictures=False)
    # plant a NaN in the saved weights, as an exploding update would leave them
    tensors, meta = read_checkpoint(run_dir / CHECKPOINT_NAME)
    tensors["model.decoder.0.bias"][0] = float("nan")
    save_checkpoint(run_dir / CHECKPOINT_NAME, tensors, meta)
    before = (run_dir / CHECKPOINT_NAME).read_bytes()
    with pytest.raises(NumericalError, match=r"became nan at epoch 2, step 1; the checkpoint of epoch 1"):
        condgen.train(toy_config(epochs=2), run_dir, resume=True, pictures=False)
    assert (run_dir / CHECKPOINT_NAME).read_bytes() == before
    assert [r["epoch"] for r in metrics(run_dir)] == [1]


def test_checkpoint_errors_name_the_file(tmp_path):
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")
    with pytest.raises(CheckpointError, match="truncated.safetensors"):
        condgen.load_run(truncated)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a condgen checkpoint"):
        condgen.load_run(foreign)


def test_loading_a_pickle_never_runs_its_code(tmp_path):
    import pickle

    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    run_dir = tmp_path / "evil"
    run_dir.mkdir()
    (run_dir / CHECKPOINT_NAME).write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        condgen.load_run(run_dir)
    assert not marker.exists()


def test_training_leaves_the_callers_random_state_alone(toy, tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    condgen.train(toy_config(epochs=1), tmp_path / "run", pictures=True)
    assert torch.equal(torch.rand(3), expected)


def test_interrupted_run_resumes_to_the_uninterrupted_result(toy, tmp_path):
    config = toy_config(epochs=4, lr_schedule="cosine")
    full = condgen.train(config, tmp_path / "full", pictures=False)

    def interrupt_after_epoch_2(line: str) -> None:
        if line.startswith("epoch 2/4"):  # logged once epoch 2's checkpoint is on disk
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        condgen.train(config, tmp_path / "cut", pictures=False, log=interrupt_after_epoch_2)
    assert [r["epoch"] for r in metrics(tmp_path / "cut")] == [1, 2]
    resumed = condgen.train(None, tmp_path / "cut", resume=True, pictures=False)
    wf, wr = weights(full), weights(resumed)
    assert all(torch.equal(wf[k], wr[k]) for k in wf)
    assert [r["lr"] for r in metrics(tmp_path / "cut")] == [r["lr"] for r in metrics(tmp_path / "full")]


def test_conditioner_state_and_learned_embeddings_round_trip(toy, tmp_path):
    config = condgen.RunConfig.parse({
        "conditioners": [{"name": "sign"}, {"name": "label", "config": {"num_classes": 2, "embedding": "learned",
                                                                         "embed_dim": 4}}],
        "model": {"latent_dim": 2, "hidden": [16], "likelihood": "gaussian"},
        "data": {"dataset": "toy"},
        "train": {"epochs": 2, "device": "cpu"},
    })
    run = condgen.train(config, tmp_path / "run", pictures=False)
    assert run.conditioners["sign"].scale == 4.0  # |value| is 1 in the toy data
    loaded = condgen.load_run(tmp_path / "run", device="cpu")
    assert loaded.conditioners["sign"].scale == 4.0
    # the learnt label embedding and the learnt Gaussian std were trained and come back as trained
    for key in ("embeddings.label.weight", "likelihood.log_std"):
        trained = run.model.state_dict()[key]
        assert not torch.equal(trained, torch.zeros_like(trained)) and torch.equal(loaded.model.state_dict()[key], trained)
    batch = make_toy_splits().test
    assert torch.equal(loaded.conditions_from_batch(batch)["sign"], run.conditions_from_batch(batch)["sign"])


def test_checkpoint_of_a_missing_plugin_names_it(toy, tmp_path):
    from condgen.errors import PluginError
    from condgen.plugins import get_plugin_manager

    config = condgen.RunConfig.parse({"conditioners": [{"name": "sign"}], "model": {"hidden": [8]},
                                      "data": {"dataset": "toy"}, "train": {"epochs": 1, "device": "cpu"}})
    condgen.train(config, tmp_path / "run", pictures=False)
    get_plugin_manager().unregister(name="sign-plugin")
    try:
        with pytest.raises(PluginError, match=r"needs conditioner 'sign' from plugin 'sign-plugin' "
                                              r"\(no distribution\), which is not installed"):
            condgen.load_run(tmp_path / "run")
    finally:
        from helpers import SignPlugin

        get_plugin_manager().register(SignPlugin(), name="sign-plugin")  # the fixture unregisters it
