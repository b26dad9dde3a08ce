"""The ``condgen`` command: one-line errors with exit code 2, and the commands on toy data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import condgen
from condgen.cli import main
from condgen.plugin.registry import get_plugin_manager
from helpers import LeftPlugin, SignPlugin, ToyData


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
    pm.register(LeftPlugin(), name="left-plugin")
    yield
    pm.unregister(name="toy-data")
    pm.unregister(name="sign-plugin")
    pm.unregister(name="left-plugin")


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
    # the marker says "a condgen run"; the lock file stays (removing it would race a waiting writer)
    assert names == [".condgen-run", ".condgen.lock", "checkpoint.safetensors", "config.json", "latent.png",
                     "metrics.jsonl", "reconstructions.png", "samples.png"]


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
    kept = json.loads((toy_run / "evaluation.json").read_text())  # for condgen report and condgen export
    assert {k: v for k, v in kept.items() if k != "evaluated_at"} == result
    assert kept["evaluated_at"].startswith("20")


def test_evaluate_shows_its_figures_when_they_cannot_be_kept(toy_run, capsys):
    (toy_run / "evaluation.json").mkdir()  # a directory in the way fails the write, for root too
    code, out, err = cli(capsys, "evaluate", str(toy_run), "--samples", "0")
    assert code == 0, err
    assert "test_neg_elbo" in out and "kept in" not in out
    assert err.startswith("warning: the figures were not kept: ") and "evaluation.json" in err
    assert len(err.splitlines()) == 1


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
    # --out and --num are checked before the run is loaded: a wrong one is named, not the missing run
    code, _, err = cli(capsys, "sample", str(tmp_path / "nowhere"), "--num", "1001", "--out", "x.png")
    assert code == 2 and "a picture's rows hold at most 1,000 samples, not --num 1001" in one_error_line(err)


def test_train_errors(capsys, tmp_path):
    code, _, err = cli(capsys, "train", "--conditioner", "colour", "--dataset", "toy", "--out", str(tmp_path / "r"))
    assert code == 2 and "unknown conditioner 'colour'; installed conditioners: inpaint, label, left, regression, sign" in one_error_line(err)
    code, _, err = cli(capsys, "train", "--latent-dim", "-1", "--out", str(tmp_path / "r"))
    assert code == 2 and "model.latent_dim = -1: Input should be greater than or equal to 0" in one_error_line(err)
    code, _, err = cli(capsys, "train", "--dataset", "toy", "--device", "cuda", "--out", str(tmp_path / "r"))
    assert code == 2 and "sees no CUDA device; use --device cpu or --device auto" in one_error_line(err)
    code, _, err = cli(capsys, "train", "--dataset", "imagenet", "--out", str(tmp_path / "r"))
    assert code == 2 and "unknown dataset 'imagenet'; registered datasets: fashion-mnist, image-folder, mnist, npz, toy" in one_error_line(err)


def test_resume_refuses_changed_flags(toy_run, capsys):
    code, _, err = cli(capsys, "train", "--resume", "--latent-dim", "7", "--out", str(toy_run))
    assert code == 2 and "model.latent_dim is 2, not 7" in one_error_line(err)
    code, out, err = cli(capsys, "train", "--resume", "--epochs", "61", "--no-pictures", "--out", str(toy_run))
    assert code == 0, err
    assert [json.loads(ln)["epoch"] for ln in (toy_run / "metrics.jsonl").read_text().splitlines()] == list(range(1, 62))


def test_debug_shows_the_traceback(capsys, tmp_path):
    from condgen.common.errors import CondgenError

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
    labels = condgen.SampleFile(tmp_path / "t.png", 3).rows(run, ["label=0,1", "sign=-1,1"]).labels
    assert labels == ["sign=-1 label=0", "sign=-1 label=1", "sign=1 label=0", "sign=1 label=1"]
    code, _, err = cli(capsys, "sample", str(tmp_path / "two"), "--condition", "label=0",
                       "--out", str(tmp_path / "x.png"))
    assert code == 2 and "a condition for 'sign' is needed" in one_error_line(err)


TOY = ["--dataset", "toy", "--hidden", "16", "--epochs", "2", "--batch-size", "32", "--device", "cpu"]


def test_conditioner_settings_on_the_command_line(capsys, tmp_path):
    code, out, err = cli(capsys, "train", *TOY, "--no-pictures", "--conditioner",
                         "label:num_classes=2,embedding=learned,embed_dim=4", "--out", str(tmp_path / "run"))
    assert code == 0, err
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["conditioners"]
    assert saved == [{"name": "label", "config": {"num_classes": 2, "field": "label", "embedding": "learned",
                                                  "embed_dim": 4}}]
    from condgen.runs.config import parse_conditioner_option

    # strings are converted by the conditioner's config, so a numeric-looking string field stays a string
    assert parse_conditioner_option('label:field=123,embed_dim=null,x="a,b",y=[1, 2]') == {
        "name": "label", "config": {"field": "123", "embed_dim": None, "x": "a,b", "y": [1, 2]}}
    for bad, message in [
        ("label:embed_dim", "setting 'embed_dim' must look like KEY=VALUE"),
        ("label:num_classes=2,num_classes=3", "setting 'num_classes' is given twice"),
        ("label:colour=red", "conditioner 'label' config.colour: unknown field"),
        ("label:num_classes=two", "conditioner 'label' config.num_classes = 'two'"),
        ("label:hidden=[1,", "setting 'hidden' is not valid JSON"),
    ]:
        code, _, err = cli(capsys, "train", *TOY, "--conditioner", bad, "--out", str(tmp_path / "bad"))
        assert code == 2 and message in one_error_line(err), bad


def test_plugins_name_lists_a_conditioners_settings(capsys):
    code, out, err = cli(capsys, "plugins", "label")
    assert code == 0, err
    assert "conditioner 'label' from plugin 'label' (condgen-label 0.2.0)" in out
    assert "num_classes  int, default 10: number of classes; labels are 0 .. num_classes-1" in out
    assert "embedding" in out and "default \"onehot\"" in out
    code, out, _ = cli(capsys, "plugins", "label", "--json")
    settings = {s["name"]: s for s in json.loads(out)["settings"]}
    assert settings["embed_dim"]["default"] is None and settings["field"]["default"] == "label"
    code, _, err = cli(capsys, "plugins", "colour")
    assert code == 2 and "unknown conditioner 'colour'" in one_error_line(err)


def test_conditional_prior_and_hybrid_objective_train_sample_and_evaluate(capsys, tmp_path):
    run = tmp_path / "run"
    code, out, err = cli(capsys, "train", *TOY, "--conditioner", "label:num_classes=2", "--prior", "conditional",
                         "--objective", "hybrid", "--gsnn-weight", "0.4", "--out", str(run))
    assert code == 0, err
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"train_gsnn_nll", "test_gsnn_nll", "train_loss", "test_loss", "test_kl"} <= set(row)
    assert row["test_loss"] == pytest.approx(0.6 * row["test_neg_elbo"] + 0.4 * row["test_gsnn_nll"], rel=1e-5)
    code, out, err = cli(capsys, "sample", str(run), "--condition", "label=all", "--num", "3",
                         "--out", str(tmp_path / "s.npy"))
    assert code == 0, err
    assert np.load(tmp_path / "s.npy").shape == (6, 1, 6, 6)
    code, out, err = cli(capsys, "evaluate", str(run), "--samples", "20", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["is_samples"] == 20 and result["test_is_nll"] < result["test_neg_elbo"]
    assert "test_gsnn_nll" in result


def test_deterministic_baseline_through_the_command_line(capsys, tmp_path):
    run = tmp_path / "run"
    code, out, err = cli(capsys, "train", *TOY, "--conditioner", "label:num_classes=2", "--latent-dim", "0",
                         "--out", str(run))
    assert code == 0, err
    assert "latent.png skipped: this model has no latent (model.latent_dim = 0)" in out
    assert (run / "samples.png").exists() and not (run / "latent.png").exists()
    code, out, err = cli(capsys, "evaluate", str(run), "--json")
    result = json.loads(out)
    assert code == 0 and result["test_kl"] == 0.0 and result["test_is_nll"] == pytest.approx(result["test_neg_elbo"])


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--prior", "conditional"], "model.prior = 'conditional' needs at least one conditioner"),
        (["--prior", "gaussian"], "model.prior = 'gaussian': Input should be 'standard' or 'conditional'"),
        (["--objective", "hybrid", "--latent-dim", "0", "--conditioner", "label"], "train.objective = 'hybrid' needs a latent"),
        (["--latent-dim", "0"], "model.latent_dim = 0 with no conditioner leaves the decoder no input"),
        (["--gsnn-weight", "0.3"], "train.gsnn_weight = 0.3 applies only to train.objective: hybrid"),
    ],
)
def test_engine_flags_that_do_not_fit_are_one_line(capsys, tmp_path, flags, message):
    code, _, err = cli(capsys, "train", *TOY, *flags, "--out", str(tmp_path / "run"))
    assert code == 2 and message in one_error_line(err)
    code, _, err = cli(capsys, "evaluate", str(tmp_path / "none"), "--samples", "-1")
    assert code == 2 and "--samples must be 0" in one_error_line(err)


def test_pictures_say_what_they_show_and_what_they_skip(capsys, tmp_path):
    # a conditioner without example conditions: samples.png is skipped, and the log says why
    code, out, err = cli(capsys, "train", *TOY, "--conditioner", "sign", "--out", str(tmp_path / "sign"))
    assert code == 0, err
    assert "samples.png skipped: conditioner 'sign' offers no example conditions" in out
    assert not (tmp_path / "sign" / "samples.png").exists()
    # a composed model: rows are test items' joint conditions, and the log says so
    code, out, err = cli(capsys, "train", *TOY, "--conditioner", "left", "--conditioner", "label:num_classes=2",
                         "--out", str(tmp_path / "two"))
    assert code == 0, err
    assert "samples.png: 10 rows, each with the conditions of one test item" in out
    assert (tmp_path / "two" / "samples.png").stat().st_size > 2000


def test_empty_or_malformed_config_sections_are_one_line(capsys, tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("model:\nconditioners:\n")
    code, _, err = cli(capsys, "train", *TOY, "--conditioner", "label:num_classes=2", "--no-pictures",
                       "--config", str(empty), "--out", str(tmp_path / "run"))
    assert code == 0, err  # empty sections are the defaults
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: 5\n")
    code, _, err = cli(capsys, "train", *TOY, "--config", str(bad), "--out", str(tmp_path / "bad"))
    assert code == 2 and "config section 'model' must be a mapping of fields, got 5" in one_error_line(err)
    code, _, err = cli(capsys, "train", *TOY, "--likelihood", "bernoulli", "--conditioner", "label",
                       "--out", str(tmp_path / "std"), "--config", str(_write(tmp_path / "std.json",
                                                                           {"model": {"gaussian_std": 0.1}})))
    assert code == 2 and "model.gaussian_std applies only to model.likelihood: gaussian" in one_error_line(err)


def _write(path, data) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def test_resume_survives_a_metrics_line_cut_short(toy_run, capsys):
    with (toy_run / "metrics.jsonl").open("a") as fh:
        fh.write('{"epoch": 61, "train_lo')  # killed while writing the next epoch's line
    code, _, err = cli(capsys, "train", "--resume", "--epochs", "61", "--no-pictures", "--out", str(toy_run))
    assert code == 0, err
    epochs = [json.loads(ln)["epoch"] for ln in (toy_run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, 62))


# -- the flags' reference in docs/cli.md, against the option tables -------------------------------
CLI_DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


INPAINT_DOCS = CLI_DOCS.parent / "conditioners" / "inpaint.md"


@pytest.mark.parametrize("command, page", [("train", CLI_DOCS), ("sample", CLI_DOCS), ("evaluate", CLI_DOCS),
                                           ("export", CLI_DOCS), ("report", CLI_DOCS), ("demo", CLI_DOCS),
                                           ("inpaint", INPAINT_DOCS)])
def test_the_docs_show_each_commands_help_as_built_from_its_table(command, page, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # the docs' blocks are 80 columns wide
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    shown = capsys.readouterr().out
    text = page.read_text()
    start = text.index(f"$ condgen {command} --help\n") + len(f"$ condgen {command} --help\n")
    documented = text[start:text.index("```", start)]
    assert exit_.value.code == 0
    assert " ".join(documented.split()) == " ".join(shown.split()), f"{page.name} should show:\n{shown}"


def test_the_docs_list_every_train_flag_with_the_config_field_it_sets():
    from condgen.cli.options import TRAIN_COMMAND

    expected = [f"| `{o.option_string}` | `{o.sets}` |" if not o.config_file_only
                else f"| (config file only) | `{o.sets}` |" for o in TRAIN_COMMAND if o.sets]
    rows = [ln for ln in CLI_DOCS.read_text().splitlines() if ln.startswith(("| `--", "| (config file only)"))]
    assert rows == expected, "docs/cli.md's table of flags should read:\n" + "\n".join(expected)
    assert "| `--gaussian-std` | `model.gaussian_std` |" in rows and "| `--eval-batch-size` | `train.eval_batch_size` |" in rows


@pytest.mark.parametrize("flags, message", [
    (["--gaussian-std", "0.1"], "model.gaussian_std applies only to model.likelihood: gaussian (it is 'bernoulli')"),
    (["--likelihood", "gaussian", "--gaussian-std", "0"], "model.gaussian_std = 0.0: Input should be greater than 0"),
    (["--eval-batch-size", "0"], "train.eval_batch_size = 0: Input should be greater than or equal to 1"),
])
def test_the_new_flags_are_checked_like_the_others(capsys, tmp_path, flags, message):
    code, _, err = cli(capsys, "train", *TOY, "--conditioner", "label:num_classes=2", *flags,
                       "--out", str(tmp_path / "run"))
    assert code == 2 and message in one_error_line(err)
    assert not (tmp_path / "run").exists()


def test_the_new_flags_reach_the_stored_run(capsys, tmp_path):
    code, _, err = cli(capsys, "train", *TOY, "--epochs", "1", "--no-pictures", "--conditioner", "label:num_classes=2",
                       "--likelihood", "gaussian", "--gaussian-std", "0.3", "--eval-batch-size", "5",
                       "--out", str(tmp_path / "run"))
    assert code == 0, err
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["gaussian_std"] == 0.3 and saved["train"]["eval_batch_size"] == 5


def test_export_writes_a_model_folder_that_samples_the_run_s_images_for_the_same_seed(toy_run, capsys, tmp_path):
    code, _, err = cli(capsys, "evaluate", str(toy_run), "--samples", "10")
    assert code == 0, err
    out = tmp_path / "shared"
    code, stdout, err = cli(capsys, "export", str(toy_run), str(out))
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    header = json.loads((out / "config.json").read_text())
    assert header["format"] == "condgen-model/1" and "optimizer" not in header and header["epoch"] == 60
    card = (out / "README.md").read_text()
    assert "| `label` | `label` |" in card and "`test_neg_elbo`" in card and "condgen sample shared" in card
    # the same images for the same seed, from the CLI and from Python
    for source in (toy_run, out):
        code, _, err = cli(capsys, "sample", str(source), "--condition", "label=all", "--num", "8", "--seed", "3",
                           "--out", str(tmp_path / f"{source.name}.npy"))
        assert code == 0, err
    assert np.array_equal(np.load(tmp_path / "run.npy"), np.load(tmp_path / "shared.npy"))
    a = condgen.load_run(toy_run).sample({"label": 1}, num=5, seed=7)
    b = condgen.load_run(out).sample({"label": 1}, num=5, seed=7)
    assert a.shape == (5, 1, 6, 6) and bool((a == b).all())


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "config.json").unlink(), "holds model.safetensors but no config.json"),
    (lambda d: (d / "config.json").write_text('{"format": "other"}'), "is not a condgen model folder's config"),
    (lambda d: (d / "model.safetensors").write_bytes(b"\0" * 10), "(truncated or corrupt?)"),
])
def test_a_damaged_model_folder_is_one_error_line(toy_run, capsys, tmp_path, damage, message):
    out = tmp_path / "shared"
    assert cli(capsys, "export", str(toy_run), str(out))[0] == 0
    damage(out)
    code, _, err = cli(capsys, "sample", str(out), "--condition", "label=0", "--out", str(tmp_path / "s.png"))
    assert code == 2 and message in one_error_line(err)


def test_export_writes_only_into_a_new_or_empty_directory(toy_run, capsys, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    code, _, err = cli(capsys, "export", str(toy_run), str(tmp_path / "full"))
    assert code == 2 and "is not a new or empty directory" in one_error_line(err)
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep"
    code, _, err = cli(capsys, "export", str(toy_run), " ")
    assert code == 2 and one_error_line(err) == ("error: export directory (OUT_DIR) ' ': name the directory to write, "
                                                 "e.g. models/my-model")


def test_the_model_card_leaves_out_figures_of_another_epoch(toy_run, capsys, tmp_path):
    assert cli(capsys, "evaluate", str(toy_run), "--samples", "0")[0] == 0
    kept = json.loads((toy_run / "evaluation.json").read_text())
    (toy_run / "evaluation.json").write_text(json.dumps({**kept, "epoch": 59}))  # evaluated, then trained on
    assert cli(capsys, "export", str(toy_run), str(tmp_path / "shared"))[0] == 0
    card = (tmp_path / "shared" / "README.md").read_text()
    assert "The kept figures are of epoch 59, not of this epoch-60 model" in card and "`test_neg_elbo`" not in card
