"""A third-party plugin, installed for real: pip installs ``examples/condgen-word`` into a fresh virtual
environment, condgen finds it through its entry point, trains, samples and evaluates with it, and
forgets it again once it is uninstalled.

The fresh venv sees this environment's packages (torch, condgen, the built-in plugins) through a
``.pth`` file, so nothing is downloaded and the test environment itself is never changed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "condgen-word"


def run(*args: str | Path, ok: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kwargs)
    if ok and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A new venv (without pip of its own) that also sees this environment's site-packages; its python."""
    try:
        distribution("condgen-word")
        pytest.skip("condgen-word is installed in the test environment already; uninstall it to run this test")
    except PackageNotFoundError:
        pass
    root = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", root)
    python = root / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    # addsitedir also runs this environment's .pth files, which is where the editable installs live
    (Path(site) / "outer_environment.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    return python


def pip(python: Path, *args: str) -> None:
    run(sys.executable, "-m", "pip", "--python", python, *args, "--quiet", "--disable-pip-version-check")


def test_the_example_plugin_installs_trains_samples_evaluates_and_uninstalls(venv, tmp_path, mnist_dir):
    # every installed plugin loads, as for a user
    env = {k: v for k, v in os.environ.items() if k not in ("CONDGEN_PLUGINS", "CONDGEN_BLOCK_PLUGINS")}

    def condgen(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        return run(venv, "-m", "condgen", *args, ok=ok, env=env, cwd=tmp_path)

    before = json.loads(condgen("plugins", "--json").stdout)
    assert "word" not in {p["name"] for p in before}

    source = shutil.copytree(EXAMPLE, tmp_path / "condgen-word", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    # builds in the copy, with this environment's setuptools (torch requires it): checked, not assumed
    pip(venv, "install", "--no-deps", "--no-build-isolation", "--check-build-dependencies", "--no-index", str(source))
    plugins = {p["name"]: p for p in json.loads(condgen("plugins", "--json").stdout)}
    assert plugins["word"]["ok"], plugins["word"]
    assert (plugins["word"]["distribution"], plugins["word"]["version"]) == ("condgen-word", "0.1.0")
    assert plugins["word"]["conditioners"] == ["word"]
    assert "max_len" in condgen("plugins", "word").stdout  # its settings, from its pydantic config

    out = tmp_path / "run"
    trained = condgen("train", "--conditioner", "word", "--latent-dim", "4", "--hidden", "64", "--epochs", "1",
                      "--train-limit", "3000", "--test-limit", "500", "--seed", "0", "--data-dir", str(mnist_dir),
                      "--out", str(out))
    assert "epoch 1/1" in trained.stdout
    assert {"checkpoint.safetensors", "samples.png", "metrics.jsonl"} <= {p.name for p in out.iterdir()}

    condgen("sample", str(out), "--condition", "word=seven,SEVN,fiev", "--num", "4", "--out", "words.npy")
    import numpy as np

    assert np.load(tmp_path / "words.npy").shape == (12, 1, 28, 28)
    bad = condgen("sample", str(out), "--condition", "word=s3ven", "--out", "x.png", ok=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "'s3ven' is not a word" in bad.stderr

    figures = json.loads(condgen("evaluate", str(out), "--samples", "0", "--json").stdout)
    assert 0.2 < figures["word_read_accuracy"] <= 1.0  # one short epoch already reads digit names far above chance (0.1)

    pip(venv, "uninstall", "--yes", "condgen-word")
    assert "word" not in {p["name"] for p in json.loads(condgen("plugins", "--json").stdout)}
    gone = condgen("sample", str(out), "--num", "2", "--out", "x.png", ok=False)
    assert gone.returncode == 2 and "word" in gone.stderr and "pip install" in gone.stderr, gone.stderr
