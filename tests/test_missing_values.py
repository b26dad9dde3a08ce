"""Missing values as an absent condition: an attributes CSV's empty cells refused, or (``missing=absent``)
marked NaN / -1 and given the model's learned absent embedding, for label and regression alike; refused,
naming the field and the count, for a conditioner that learns no absent condition; and the conformance kit's
check of a conditioner's missing values."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from helpers import SignConditioner, make_toy_splits, one_error_line, toy_config
from PIL import Image
from torch import Tensor

import condgen
from condgen.cli import main
from condgen.data.attributes import MISSING_CATEGORY, Attributes, is_missing
from condgen.runs.build import create_run
from condgen.runs.checkpoint import read_checkpoint, save_checkpoint
from condgen.testing import check_missing_values

NAMES = {0: "zero", 1: "one", 2: "two"}


# -- the CSV ------------------------------------------------------------------------------------------
def write_rows(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


def test_an_empty_cell_is_refused_naming_row_and_column_or_marked_missing(tmp_path):
    csv = write_rows(tmp_path / "a.csv", ["file,ink,colour", "a.png,0.5,red", "b.png,,blue", "c.png,0.25,",
                                          "d.png,0.75,red"])
    with pytest.raises(condgen.DataError) as err:
        Attributes(csv).fields(["a.png", "b.png", "c.png", "d.png"])
    assert str(err.value) == (f"attributes CSV {str(csv)!r} row 3 (file 'b.png'), column 'ink' is empty; give every "
                              "file a value, or --data-option missing=absent to take an empty cell as that condition "
                              "left out")
    table = Attributes(csv, missing="absent")
    # an empty cell says nothing of its column's type: ink is still numbers, colour's names leave it out
    assert table.kinds == {"ink": "number", "colour": "category"} and table.classes == {"colour": ["blue", "red"]}
    fields, classes = table.fields(["d.png", "c.png", "b.png", "a.png"])
    assert fields["ink"].dtype == torch.float32 and fields["colour"].dtype == torch.int64
    assert fields["ink"][[0, 1, 3]].tolist() == [0.75, 0.25, 0.5] and math.isnan(fields["ink"][2])
    assert fields["colour"].tolist() == [1, MISSING_CATEGORY, 0, 1] and classes == {"colour": ["blue", "red"]}
    assert is_missing(fields["ink"]).tolist() == [False, False, True, False]
    assert is_missing(fields["colour"]).tolist() == [False, True, False, False]
    assert is_missing(torch.tensor([[0.0, math.nan], [1.0, 2.0]])).tolist() == [True, False]  # any of an item's values
    empty = write_rows(tmp_path / "e.csv", ["file,ink,note", "a.png,0.5,", "b.png,0.1,"])
    with pytest.raises(condgen.DataError, match="column 'note' is empty in every row; fill it in or remove it"):
        Attributes(empty, missing="absent")


# -- an image folder with empty cells, through the command line -----------------------------------------
def gappy_folder(root: Path, digits) -> Path:
    """A flat folder of the digits and a CSV of each one's digit name and ink, every 5th name and every 7th
    ink left empty."""
    root.mkdir(parents=True)
    rows, k = ["file,digit,ink"], 0
    for d, images in digits.items():
        for i, image in enumerate(images.numpy()):
            Image.fromarray(image).save(root / f"{d}-{i:02d}.png")
            ink = f"{image.mean() / 255:.5f}"
            rows.append(f"{d}-{i:02d}.png,{'' if k % 5 == 0 else NAMES[d]},{'' if k % 7 == 3 else ink}")
            k += 1
    write_rows(root / "digits.csv", rows)
    return root


def flags(root: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--dataset", "image-folder", "--data-dir", str(root), "--data-option", "attributes=digits.csv",
            "--conditioner", "label:field=digit,num_classes=3", "--conditioner", "regression:targets=ink",
            "--latent-dim", "2", "--hidden", "32", "--epochs", "1", "--device", "cpu", *extra, "--out", str(out)]


def test_empty_cells_are_refused_or_trained_on_as_absent_conditions(tmp_path, digits, capsys):
    root, run_dir = gappy_folder(tmp_path / "d", digits), tmp_path / "run"
    assert main(flags(root, run_dir)) == 2
    line = one_error_line(capsys)
    found = re.fullmatch(rf"error: attributes CSV {re.escape(repr(str(root / 'digits.csv')))} row (\d+) \(file "
                         r"'(\d-\d\d.png)'\), column '(\w+)' is empty; give every file a value, or --data-option "
                         r"missing=absent to take an empty cell as that condition left out", line)
    assert found, line
    row, file, column = int(found[1]), found[2], found[3]
    csv_rows = (root / "digits.csv").read_text().splitlines()
    header, cells = csv_rows[0].split(","), csv_rows[row - 1].split(",")  # the row a spreadsheet numbers `row`
    assert cells[0] == file and cells[header.index(column)] == ""
    # taken as absent, but neither conditioner learns an absent condition: the first is refused, naming its field
    assert main(flags(root, run_dir, "--data-option", "missing=absent")) == 2
    line = one_error_line(capsys)
    assert line.startswith("error: ") and " training items have no value in data field 'digit' (a missing value), " \
        "which conditioner 'label' reads, and it learns no absent condition to give them; train it with condition " \
        "dropout, --condition-dropout label=P (P = 0: learnt from those items alone, none dropped at random), or " \
        "fill the values in" in line, line
    count, total = (int(w) for w in line.removeprefix("error: ").split()[:4:3])
    assert 14 <= count <= 18 and 75 <= total <= 85  # 18 of the 90 names are empty, some of them test images
    assert not run_dir.exists()
    # with condition dropout for label and p = 0 for regression (its absent condition learnt from the empty inks)
    assert main(flags(root, run_dir, "--data-option", "missing=absent", "--condition-dropout",
                      "label=0.1,regression=0")) == 0, capsys.readouterr().err
    record = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert all(math.isfinite(record[k]) for k in ("train_loss", "train_neg_elbo", "test_neg_elbo", "test_loss"))
    run = condgen.load_run(run_dir, device="cpu")
    assert run.optional == ["label", "regression"] and run.dropout == {"label": 0.1}
    absent = run.model.absent["regression"].detach()
    assert absent.abs().sum() > 0  # learnt from the missing inks, though nothing was dropped at random
    result = condgen.evaluate(run, samples=2)  # the test split's missing values are absent conditions too
    assert all(math.isfinite(v) for v in result.values() if isinstance(v, float))
    assert math.isfinite(result["test_is_nll"]) and 0 <= result["label_elbo_accuracy"] <= 1
    # either condition may be left out when sampling, as the model knows its absent condition
    assert main(["sample", str(run_dir), "--condition", "regression=ink:0.15", "--num", "2",
                 "--out", str(tmp_path / "s.npy")]) == 0


# -- the engine: exactly the absent embedding, and finite gradients ---------------------------------------
def gappy_splits(n: int = 64) -> dict[str, Tensor]:
    """The toy training split with a class field ``colour`` (items 1, 5, 9, ... missing) and its ``value``
    field missing (NaN) for items 2, 9, 16, ...: item 9 misses both."""
    train = make_toy_splits(n, 8).train
    colour = train["label"].clone()
    colour[1::4] = MISSING_CATEGORY
    value = train["value"].clone()
    value[2::7] = math.nan
    return {**train, "colour": colour, "value": value}


def gappy_config(**dropout: float) -> condgen.RunConfig:
    return condgen.RunConfig.parse({
        "conditioners": [{"name": "label", "config": {"field": "colour", "num_classes": 2}},
                         {"name": "regression", "config": {"targets": ["value"], "hidden": 8, "embed_dim": 4}}],
        "model": {"latent_dim": 2, "hidden": [16]}, "data": {"dataset": "toy"},
        "train": {"device": "cpu", "condition_dropout": dropout}})


def test_an_item_with_a_missing_value_gets_exactly_the_absent_embedding_and_gradients_stay_finite():
    train = gappy_splits()
    run = create_run(gappy_config(label=0.0, regression=0.0), train, torch.device("cpu"))
    no_colour, no_value = is_missing(train["colour"]), is_missing(train["value"])
    absent = run.absent_items(train)
    assert torch.equal(absent["label"], no_colour) and torch.equal(absent["regression"], no_value)
    with torch.no_grad():  # make the absent embeddings recognisable
        run.model.absent["label"].copy_(torch.tensor([0.25, -0.5]))
        run.model.absent["regression"].copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    conds = run.conditions_from_batch(train)
    # the placeholders a missing value gets are valid, finite conditions: class 0, the fitted mean
    assert torch.equal(conds["label"][no_colour], torch.zeros(int(no_colour.sum()), dtype=torch.long))
    mean = run.conditioners["regression"].mean[0]
    assert mean == pytest.approx(float(train["value"][~no_value].mean()), rel=1e-6)  # fitted without the NaNs
    assert torch.equal(conds["regression"][no_value], torch.full((int(no_value.sum()), 1), mean))
    e = run.model.embed(conds, 64, absent)
    assert torch.equal(e[no_colour, :2], run.model.absent["label"].expand(int(no_colour.sum()), 2))
    assert torch.equal(e[~no_colour, :2], torch.nn.functional.one_hot(train["colour"][~no_colour], 2).float())
    assert torch.equal(e[no_value, 2:], run.model.absent["regression"].expand(int(no_value.sum()), 4))
    assert not torch.equal(e[~no_value, 2:][:1], run.model.absent["regression"][None])
    # the training step: finite loss and gradients, and the absent embeddings learn from the missing items alone
    run.model.train()
    loss = run.terms(train, generator=torch.Generator().manual_seed(0), dropout=True)["loss"].mean()
    loss.backward()
    assert math.isfinite(float(loss.detach()))
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in run.model.parameters())
    assert run.model.absent["label"].grad.abs().sum() > 0 and run.model.absent["regression"].grad.abs().sum() > 0
    # terms takes the batch's missing values by default; absent={} is the placeholders' own embedding, other terms
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    with torch.no_grad():
        default = run.terms(train, conds, gen())["loss"]
        explicit = run.terms(train, conds, gen(), absent=absent)["loss"]
        ignored = run.terms(train, conds, gen(), absent={})["loss"]
    assert torch.equal(default, explicit)
    either = no_colour | no_value
    assert torch.equal(default[~either], ignored[~either]) and not torch.allclose(default[either], ignored[either])
    assert torch.isfinite(run.log_likelihood(train, samples=3, generator=gen())).all()


def test_missing_values_without_an_absent_condition_are_refused_naming_field_and_count():
    train = gappy_splits()
    with pytest.raises(condgen.ConfigError) as err:
        create_run(gappy_config(label=0.1), train, torch.device("cpu"))
    assert str(err.value) == (
        "9 of the 64 training items have no value in data field 'value' (a missing value), which conditioner "
        "'regression' reads, and it learns no absent condition to give them; train it with condition dropout, "
        "--condition-dropout regression=P (P = 0: learnt from those items alone, none dropped at random), or fill "
        "the values in")
    # p = 0 learns the absent condition from missing values only: with none in the training split it is refused
    clean = {**train, "colour": train["label"]}
    with pytest.raises(condgen.ConfigError, match="train.condition_dropout gives conditioner 'label' p = 0, which "
                                                  "learns its absent condition from the training items whose data "
                                                  "leave it out .missing values., and its training split has none"):
        create_run(gappy_config(label=0.0, regression=0.1), clean, torch.device("cpu"))
    # a test split with missing values is refused too where it is given, before anything is trained
    no_gaps = {**clean, "value": make_toy_splits(64, 8).train["value"]}
    with pytest.raises(condgen.ConfigError, match="^16 of the 64 test items have no value in data field 'colour'"):
        create_run(gappy_config(), no_gaps, torch.device("cpu"), test=train)
    # and a batch with a missing value, for a run that learnt no absent condition, is one DataError
    run = create_run(gappy_config(), no_gaps, torch.device("cpu"))
    with pytest.raises(condgen.DataError) as err:
        run.terms(train)
    assert str(err.value) == (
        "16 of 64 items have no value in data field 'colour' (a missing value), which conditioner 'label' reads, and "
        "this run learnt no absent condition for it (it was trained without condition dropout for 'label'); fill "
        "the values in, or train a run with --condition-dropout label=P")
    with pytest.raises(condgen.ArgumentError, match="absent marks conditioner 'label', which has no absent condition"):
        run.terms(no_gaps, absent={"label": torch.zeros(64, dtype=torch.bool)})


def test_a_run_stored_when_p_0_meant_no_dropout_loads_as_it_was_trained(toy, tmp_path):
    condgen.train(toy_config(epochs=1), tmp_path / "run", pictures=False, log=lambda s: None)
    path = tmp_path / "run" / "checkpoint.safetensors"
    tensors, meta = read_checkpoint(path)
    meta["config"]["train"]["condition_dropout"] = {"label": 0.0}  # what an earlier condgen stored for label=0
    save_checkpoint(path, tensors, meta)
    run = condgen.load_run(tmp_path / "run", device="cpu")
    assert run.optional == [] and "absent.label" not in run.model.state_dict()
    with pytest.raises(condgen.ConditionError, match="a condition for 'label' is needed"):
        run.sample({})


# -- the conformance kit -----------------------------------------------------------------------------
class GappySign(SignConditioner):
    """The toy sign conditioner, its ``value`` missing where NaN: left out of fit, mean 0 in the meantime."""

    name = "gappy"

    def fit(self, train):
        value = self.require_field(train, "value")
        self.scale = float(value[~is_missing(value)].abs().max()) * 4.0

    def missing_values(self, batch):
        return {"value": is_missing(self.require_field(batch, "value"))}

    def condition_from_batch(self, batch, generator=None):
        return super().condition_from_batch(batch).nan_to_num(0.0)


class KeepsTheNaN(GappySign):
    def condition_from_batch(self, batch, generator=None):
        return SignConditioner.condition_from_batch(self, batch)

    def check_condition(self, c):
        return c.float()


class FitsOnTheNaN(GappySign):
    def fit(self, train):
        self.scale = float(self.require_field(train, "value").nan_to_num(100.0).abs().max())


class MarksNothing(GappySign):
    def missing_values(self, batch):
        return {}


class MarksAFloatMask(GappySign):
    def missing_values(self, batch):
        return {"value": is_missing(batch["value"]).float()}


def sign_batch(missing: bool = False) -> dict[str, Tensor]:
    value = torch.tensor([-2.0, 1.0, 0.5, 3.0, -1.0])
    if missing:
        value[[1, 3]] = math.nan
    return {"image": torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(0)), "value": value}


def test_the_kit_passes_a_conditioner_with_missing_values_and_catches_each_fault():
    check_missing_values(GappySign, sign_batch(), sign_batch(missing=True), [1, 3])
    check_missing_values(SignConditioner, sign_batch())  # no missing values: the default {}
    for cls, problem in [(KeepsTheNaN, "gave a non-finite condition for a missing value"),
                         (FitsOnTheNaN, "fit must leave the missing values out"),
                         (MarksNothing, r"marks items \[\] of the batch with missing values; expected \[1, 3\]"),
                         (MarksAFloatMask, r"expected torch.bool of shape \(5,\)")]:
        with pytest.raises(AssertionError, match=problem):
            check_missing_values(cls, sign_batch(), sign_batch(missing=True), [1, 3])
