"""End to end on real MNIST through the installed ``condgen`` command, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np


def condgen(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CONDGEN_DATA_DIR"}  # the flag must be enough
    result = subprocess.run([sys.executable, "-m", "condgen", *args], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def test_train_sample_evaluate_on_a_subset_of_real_mnist(mnist_dir, tmp_path):
    run = tmp_path / "run"
    condgen("train", "--conditioner", "label", "--latent-dim", "2", "--hidden", "512", "--batch-size", "50",
            "--epochs", "2", "--seed", "0", "--data-dir", str(mnist_dir), "--train-limit", "6000",
            "--test-limit", "1000", "--out", str(run))
    for picture in ("samples.png", "reconstructions.png", "latent.png"):
        assert (run / picture).stat().st_size > 10_000, picture
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    # 240 steps of the seed model: well below an untrained model's ~540 nats, far above a trained one's 131
    assert 140 < rows[-1]["test_neg_elbo"] < 200

    condgen("sample", str(run), "--condition", "label=all", "--num", "8", "--out", str(tmp_path / "s.npy"))
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (80, 1, 28, 28) and samples.dtype == np.float32
    assert 0.0 <= samples.min() and samples.max() <= 1.0
    assert 0.05 < samples.mean() < 0.3  # digits: mostly dark background, some ink

    condgen("sample", str(run), "--condition", "label=3", "--num", "16", "--out", str(tmp_path / "threes.png"))
    assert (tmp_path / "threes.png").stat().st_size > 5_000

    result = json.loads(condgen("evaluate", str(run), "--samples", "100", "--data-dir", str(mnist_dir),
                                "--json").stdout)
    assert result["test_items"] == 1000 and result["is_samples"] == 100
    assert abs(result["test_neg_elbo"] - rows[-1]["test_neg_elbo"]) < 1e-3  # same figure as training logged
    # the importance-sampled -log p(x|c) is below the bound, by a few nats for this small latent
    assert result["test_neg_elbo"] - 15 < result["test_is_nll"] < result["test_neg_elbo"]
    assert result["label_elbo_accuracy"] > 0.5  # the label is used: chance would be 0.1

    # the same run where the label plugin is filtered out: one line saying so, and by what
    missing = subprocess.run([sys.executable, "-m", "condgen", "sample", str(run), "--condition", "label=1",
                              "--out", str(tmp_path / "x.png")], capture_output=True, text=True,
                             env={**os.environ, "CONDGEN_PLUGINS": ""}, timeout=300)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert ("needs conditioner 'label' from plugin 'label' (distribution condgen-label 0.2.0), which is installed "
            "but not loaded: CONDGEN_PLUGINS='' leaves it out; add label to CONDGEN_PLUGINS or unset it"
            ) in missing.stderr


def test_ctrl_c_keeps_the_last_epoch_and_resume_finishes(mnist_dir, tmp_path):
    import signal

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "condgen", "train", "--conditioner", "label", "--epochs", "50", "--seed", "0",
           "--data-dir", str(mnist_dir), "--train-limit", "2000", "--test-limit", "200", "--no-pictures",
           "--out", str(run)]
    # a shell that started the tests in the background ignores SIGINT, and children inherit that: restore it
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:  # wait until an epoch's checkpoint is on disk
        if line.startswith("epoch 2/50"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"interrupted; the run keeps its last complete epoch: continue it with condgen train --resume --out {run}" in err
    assert "Traceback" not in err
    done = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert 2 <= len(done) < 50 and done == list(range(1, len(done) + 1))

    condgen("train", "--resume", "--epochs", str(len(done) + 1), "--no-pictures", "--out", str(run))
    resumed = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert resumed == list(range(1, len(done) + 2))


def test_conditional_prior_with_hybrid_objective_and_the_baseline_on_real_mnist(mnist_dir, tmp_path):
    common = ["--conditioner", "label", "--hidden", "256", "--epochs", "1", "--data-dir", str(mnist_dir),
              "--train-limit", "3000", "--test-limit", "500"]
    cvae, baseline = tmp_path / "cvae", tmp_path / "baseline"
    condgen("train", *common, "--latent-dim", "8", "--prior", "conditional", "--objective", "hybrid",
            "--out", str(cvae))
    row = json.loads((cvae / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["test_gsnn_nll"] > row["test_recon_nll"] and 0 < row["test_kl"]
    condgen("sample", str(cvae), "--condition", "label=0,7", "--num", "4", "--out", str(tmp_path / "s.npy"))
    assert np.load(tmp_path / "s.npy").shape == (8, 1, 28, 28)
    result = json.loads(condgen("evaluate", str(cvae), "--samples", "20", "--json").stdout)
    assert result["test_is_nll"] < result["test_neg_elbo"]

    condgen("train", *common, "--latent-dim", "0", "--out", str(baseline))
    result = json.loads(condgen("evaluate", str(baseline), "--json").stdout)
    assert result["test_kl"] == 0 and abs(result["test_is_nll"] - result["test_neg_elbo"]) < 1e-3
    assert (baseline / "samples.png").exists() and not (baseline / "latent.png").exists()
