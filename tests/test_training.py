"""Training on toy data: reproducibility, metrics, checkpoints, resume, numerical faults."""

from __future__ import annotations

import json
import math

import pytest
import torch

import condgen
from condgen.runs.checkpoint import CHECKPOINT_NAME, CheckpointError, read_checkpoint, save_checkpoint
from condgen.common.errors import CondgenError
from condgen.training.loop import NumericalError

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
        "name": "label", "plugin": "label", "distribution": "condgen-label", "version": "0.2.0", "state": {},
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
    with pytest.raises(CondgenError, match=r"model.latent_dim is 2, not 5; only train.epochs, train.device and train.log"):
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
    from condgen.common.errors import PluginError
    from condgen.plugin.registry import get_plugin_manager

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


# -- the objective's named terms, the engine features, configs stored whole ---------------------
def left_config(**model: object) -> condgen.RunConfig:
    return condgen.RunConfig.parse({
        "conditioners": [{"name": "left"}],
        "model": {"latent_dim": 2, "hidden": [16], **model},
        "data": {"dataset": "toy"},
        "train": {"epochs": 2, "batch_size": 32, "device": "cpu"},
    })


def test_metrics_carry_each_named_term_for_train_and_test(toy, tmp_path):
    condgen.train(toy_config(epochs=2), tmp_path / "elbo", pictures=False)
    row = metrics(tmp_path / "elbo")[-1]
    for split in ("train", "test"):
        assert row[f"{split}_neg_elbo"] == pytest.approx(row[f"{split}_recon_nll"] + row[f"{split}_kl"], rel=1e-5)
        assert row[f"{split}_loss"] == pytest.approx(row[f"{split}_neg_elbo"], rel=1e-5)  # the ELBO objective
        assert f"{split}_gsnn_nll" not in row
    condgen.train(toy_config(epochs=2, objective="hybrid", gsnn_weight=0.3), tmp_path / "hybrid", pictures=False)
    row = metrics(tmp_path / "hybrid")[-1]
    for split in ("train", "test"):
        expected = 0.7 * row[f"{split}_neg_elbo"] + 0.3 * row[f"{split}_gsnn_nll"]
        assert row[f"{split}_loss"] == pytest.approx(expected, rel=1e-5)
        # decoding a z from the prior fits x worse than one from the encoder, which has seen x
        assert row[f"{split}_gsnn_nll"] > row[f"{split}_recon_nll"]


def test_hybrid_training_lowers_the_gsnn_term(toy, tmp_path):
    elbo = condgen.train(toy_config(epochs=6), tmp_path / "elbo", pictures=False)
    hybrid = condgen.train(toy_config(epochs=6, objective="hybrid", gsnn_weight=0.9), tmp_path / "hybrid",
                           pictures=False)
    test = make_toy_splits().test
    gsnn = {}
    for name, run in (("elbo", elbo), ("hybrid", hybrid)):
        run.model.eval()
        with torch.no_grad():
            terms = run.model(test["image"], run.conditions_from_batch(test), torch.Generator().manual_seed(0),
                              gsnn=True)
        gsnn[name] = terms.gsnn_nll.mean().item()
    assert gsnn["hybrid"] < gsnn["elbo"]  # the objective it optimises


def test_only_the_part_no_condition_gives_is_scored(toy, tmp_path):
    run = condgen.train(left_config(latent_dim=0), tmp_path / "run", pictures=False)
    batch = {k: v[:8] for k, v in make_toy_splits().test.items()}
    terms = run.terms(batch)
    # by hand: the deterministic decoder's Bernoulli NLL over the right half of each image only
    conds = run.conditions_from_batch(batch)
    logits = run.model.decode(torch.zeros(8, 0), run.model.embed(conds, 8)).reshape(8, 1, 6, 6)
    nll = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["image"], reduction="none")
    assert torch.allclose(terms["recon_nll"], nll[..., 3:].sum((1, 2, 3)), atol=1e-5)
    assert not torch.allclose(terms["recon_nll"], nll.sum((1, 2, 3)), atol=1e-3)
    # given pixels do not count: changing them in x leaves the scores alone
    changed = dict(batch, image=batch["image"].clone())
    changed["image"][..., :3] = 0.5
    again = run.terms(changed, conds)
    assert torch.equal(again["recon_nll"], terms["recon_nll"])
    row = metrics(tmp_path / "run")[-1]
    assert row["test_neg_elbo"] < 18 * math.log(2)  # at most the 18 scored pixels' worth


def test_importance_sampled_nll_is_below_the_bound_on_the_toy_data(toy, tmp_path):
    run = condgen.train(toy_config(epochs=4), tmp_path / "run", pictures=False)
    result = condgen.evaluate(run, samples=50)
    assert result["is_samples"] == 50 and result["test_items"] == 128
    assert result["test_is_nll"] < result["test_neg_elbo"]
    assert result["test_is_nll"] > result["test_neg_elbo"] - 5  # a few nats tighter, not a different number
    again = condgen.evaluate(run, samples=50)
    assert again["test_is_nll"] == result["test_is_nll"]  # seeded: the same figure twice
    assert "test_is_nll" not in condgen.evaluate(run, samples=0)


def test_deterministic_baseline_trains_and_its_likelihood_is_exact(toy, tmp_path):
    run = condgen.train(toy_config(epochs=3, lr=3e-3).model_copy(
        update={"model": condgen.ModelConfig(latent_dim=0, hidden=[32])}), tmp_path / "run", pictures=False)
    rows = metrics(tmp_path / "run")
    assert all(r["test_kl"] == 0.0 and r["train_kl"] == 0.0 for r in rows)
    assert rows[-1]["test_neg_elbo"] < rows[0]["test_neg_elbo"]
    result = condgen.evaluate(run, samples=10)
    assert result["test_is_nll"] == pytest.approx(result["test_neg_elbo"], rel=1e-6)
    loaded = condgen.load_run(tmp_path / "run", device="cpu")
    assert loaded.model.encoder is None and torch.equal(loaded.sample({"label": 1}, num=2, seed=0),
                                                        run.sample({"label": 1}, num=2, seed=9))


def test_conditional_prior_run_round_trips_and_samples_from_its_prior(toy, tmp_path):
    config = toy_config(epochs=3, objective="hybrid").model_copy(
        update={"model": condgen.ModelConfig(latent_dim=2, hidden=[32], prior="conditional")})
    run = condgen.train(config, tmp_path / "run", pictures=False)
    assert "prior.net.0.weight" in run.model.state_dict()
    loaded = condgen.load_run(tmp_path / "run", device="cpu")
    assert torch.equal(loaded.sample({"label": 0}, num=4, seed=1), run.sample({"label": 0}, num=4, seed=1))
    # the learned prior differs by label, and generation uses it
    mu, _ = run.model.prior.params(run.model.embed({"label": torch.tensor([0, 1])}, 2))
    assert not torch.allclose(mu[0], mu[1])


def test_engine_settings_that_do_not_fit_together_are_named():
    from condgen.common.errors import ConfigError

    with pytest.raises(ConfigError, match=r"model.prior = 'conditional' needs at least one conditioner"):
        condgen.RunConfig.parse({"model": {"prior": "conditional"}})
    with pytest.raises(ConfigError, match=r"model.prior = 'conditional' needs a latent, but model.latent_dim = 0"):
        condgen.RunConfig.parse({"conditioners": [{"name": "label"}],
                                 "model": {"prior": "conditional", "latent_dim": 0}})
    with pytest.raises(ConfigError, match=r"train.gsnn_weight = 0.2 applies only to train.objective: hybrid"):
        condgen.RunConfig.parse({"train": {"gsnn_weight": 0.2}})
    with pytest.raises(ConfigError, match=r"train.objective = 'hybrid' needs a latent"):
        condgen.RunConfig.parse({"conditioners": [{"name": "label"}], "model": {"latent_dim": 0},
                                 "train": {"objective": "hybrid"}})
    with pytest.raises(ConfigError, match=r"model.latent_dim = 0 with no conditioner leaves the decoder no input"):
        condgen.RunConfig.parse({"model": {"latent_dim": 0}})
    with pytest.raises(ConfigError, match=r"train.gsnn_weight = 1.5: Input should be less than or equal to 1"):
        condgen.RunConfig.parse({"train": {"objective": "hybrid", "gsnn_weight": 1.5}})
    assert condgen.RunConfig.parse({"train": {"objective": "hybrid"}}).train.gsnn_weight == 0.5


def test_a_config_built_without_parse_is_still_validated_by_train(toy, tmp_path):
    from condgen.common.errors import ConfigError

    bad = toy_config().model_copy(update={"conditioners": [], "model": condgen.ModelConfig(prior="conditional")})
    with pytest.raises(ConfigError, match="model.prior = 'conditional' needs at least one conditioner"):
        condgen.train(bad, tmp_path / "run", pictures=False)


def test_conditioner_configs_are_stored_with_their_defaults(toy, tmp_path):
    config = condgen.RunConfig.parse({"conditioners": [{"name": "label"}], "data": {"dataset": "toy"},
                                      "model": {"hidden": [8]}, "train": {"epochs": 1, "device": "cpu"}})
    assert config.conditioners[0].config == {"num_classes": 10, "field": "label", "embedding": "onehot",
                                             "embed_dim": None}
    condgen.train(config, tmp_path / "run", pictures=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    _, meta = read_checkpoint(tmp_path / "run" / CHECKPOINT_NAME, load_tensors=False)
    assert saved["conditioners"][0]["config"]["num_classes"] == 10
    assert meta["config"]["conditioners"][0]["config"]["num_classes"] == 10


def test_resume_reads_the_checkpoint_once(toy, tmp_path, monkeypatch, capsys):
    import condgen.runs.store
    from condgen.cli import main

    condgen.train(toy_config(epochs=1), tmp_path / "run", pictures=False)
    reads = []
    real = condgen.runs.store.read_checkpoint
    monkeypatch.setattr(condgen.runs.store, "read_checkpoint", lambda *a, **k: reads.append(a) or real(*a, **k))
    assert main(["train", "--resume", "--epochs", "2", "--no-pictures", "--out", str(tmp_path / "run")]) == 0
    assert len(reads) == 1
    assert [r["epoch"] for r in metrics(tmp_path / "run")] == [1, 2]


def test_evaluate_checks_its_arguments_before_loading_data(toy, tmp_path):
    run = condgen.train(toy_config(epochs=1), tmp_path / "run", pictures=False)
    for bad in (-1, 2.5, True, "100"):
        with pytest.raises(CondgenError, match="samples must be a whole number >= 0"):
            condgen.evaluate(run, samples=bad, data_dir=str(tmp_path / "nowhere"))


@pytest.mark.parametrize("clip", [None, 0.5])
def test_grad_clip_bounds_the_gradients_norm_at_every_step(toy, tmp_path, monkeypatch, clip):
    from condgen.training import loop

    real_stepper, norms = loop.stepper, []

    def measuring(opt):
        step = real_stepper(opt)
        params = [p for group in opt.param_groups for p in group["params"]]

        def measured():
            grads = [p.grad.norm() for p in params if p.grad is not None]
            norms.append(float(torch.linalg.vector_norm(torch.stack(grads))))
            step()
        return measured

    monkeypatch.setattr(loop, "stepper", measuring)
    condgen.train(toy_config(epochs=1, grad_clip=clip), tmp_path / "run", progress=False, pictures=False)
    assert len(norms) == 16  # 512 toy items, batch 32
    if clip is None:
        assert max(norms) > 0.5  # the toy model's gradients are bigger than the clip below
    else:
        assert max(norms) <= clip * (1 + 1e-5)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_bf16_trains_on_the_cpu_with_the_likelihood_and_kl_in_fp32(toy, tmp_path, monkeypatch, arch):
    from condgen.runs.run import Run

    real_terms, dtypes = Run.terms, []

    def recording(self, *args, **kwargs):
        out = real_terms(self, *args, **kwargs)
        if kwargs.get("dropout"):  # a training step, not the epoch's evaluation
            dtypes.append((torch.is_autocast_enabled("cpu"), {n: t.dtype for n, t in out.items()}))
        return out

    monkeypatch.setattr(Run, "terms", recording)
    model = {"arch": arch, "latent_dim": 2, "hidden": [32], "channels": [8]}
    runs = {}
    for precision in ("fp32", "bf16"):
        config = toy_config(epochs=4, precision=precision).model_copy(
            update={"model": condgen.ModelConfig(**model)})
        runs[precision] = condgen.train(config, tmp_path / precision, pictures=False, progress=False)
    rows = {p: metrics(tmp_path / p) for p in runs}
    assert rows["bf16"][-1]["test_neg_elbo"] < rows["bf16"][0]["test_neg_elbo"] - 1.0  # it trains
    # the same model, within what bf16's 8-bit mantissa costs: a few per cent of the fp32 run's bound
    assert rows["bf16"][-1]["test_neg_elbo"] == pytest.approx(rows["fp32"][-1]["test_neg_elbo"], rel=0.05)
    assert rows["bf16"][-1]["test_neg_elbo"] != rows["fp32"][-1]["test_neg_elbo"]  # and autocast did run
    on = [d for enabled, d in dtypes if enabled]
    assert len(on) == len(dtypes) // 2 and all(t == torch.float32 for d in on for t in d.values())
    assert all(p.dtype == torch.float32 for p in runs["bf16"].model.parameters())  # the weights stay fp32
