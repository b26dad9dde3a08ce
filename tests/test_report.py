"""``condgen report``: the page of a run and of runs compared, read as HTML and looked at in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser

import pytest

from browser import console_errors
from condgen.cli import main
from helpers import one_error_line


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory):
    """Two runs of the toy data through the CLI: ``a`` (3 epochs, with its pictures, then evaluated) and ``b``
    (2 epochs, latent 3, no pictures, not evaluated)."""
    from condgen.plugin.registry import get_plugin_manager
    from helpers import ToyData

    pm = get_plugin_manager()
    pm.register(ToyData(), name="toy-data")
    tmp = tmp_path_factory.mktemp("report")
    common = ["train", "--dataset", "toy", "--conditioner", "label:num_classes=2", "--hidden", "32", "--batch-size",
              "64", "--device", "cpu"]
    assert main([*common, "--epochs", "3", "--out", str(tmp / "a")]) == 0
    assert main(["evaluate", str(tmp / "a"), "--samples", "5"]) == 0
    assert main([*common, "--epochs", "2", "--latent-dim", "3", "--no-pictures", "--out", str(tmp / "b")]) == 0
    yield tmp
    pm.unregister(name="toy-data")


class Page(HTMLParser):
    """What a page holds: its tags by name, the text of its table cells, its resources' addresses."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}
        self.cells: list[str] = []
        self.addresses: list[str] = []
        self._in_cell = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self._in_cell = tag in ("td", "th")
        self.addresses += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_data(self, data):
        if self._in_cell and data.strip():
            self.cells.append(data.strip())


def _runs(tmp_path, toy_runs):
    return shutil.copytree(toy_runs / "a", tmp_path / "a"), shutil.copytree(toy_runs / "b", tmp_path / "b")


def test_a_runs_report_holds_its_curves_pictures_figures_and_config(toy_runs, tmp_path, capsys):
    a, _ = _runs(tmp_path, toy_runs)
    assert main(["report", str(a)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {a / 'report.html'} (one file with everything in it")
    text = (a / "report.html").read_text()
    page = Page(text)
    lines = [json.loads(line) for line in (a / "metrics.jsonl").read_text().splitlines()]
    terms = sorted({k.split("_", 1)[1] for k in lines[0] if k.startswith(("train_", "test_"))} - {"seconds"})
    assert terms == ["kl", "loss", "neg_elbo", "recon_nll"]
    assert page.tags["svg"] == len(terms) + 2  # a plot a term, the learning rate, the seconds per epoch
    for term in terms:
        assert f"<figcaption>{term}: the training split" in text
    # every picture the run wrote, inlined; nothing fetched from anywhere
    assert sorted(a for a in page.addresses if a.startswith("data:image/png;base64,")) and len(page.addresses) == 3
    assert not [a for a in page.addresses if not a.startswith("data:")]
    # the evaluation's figures, as condgen evaluate kept them, and the last epoch's and the config's
    kept = json.loads((a / "evaluation.json").read_text())
    assert f"{kept['test_neg_elbo']:.4f}" in page.cells and kept["evaluated_at"] in page.cells
    assert f"{lines[-1]['test_neg_elbo']:.4f}" in page.cells
    assert "model.latent_dim" in page.cells and "conditioners[0].name" in page.cells and '"label"' in page.cells


def test_runs_compared_overlay_their_curves_and_tabulate_their_figures(toy_runs, tmp_path, capsys):
    a, b = _runs(tmp_path, toy_runs)
    out = tmp_path / "compare.html"
    assert main(["report", str(a), str(b), "--out", str(out)]) == 0
    text = out.read_text()
    page = Page(text)
    neg_elbo = next(f for f in text.split("<figure>") if "<figcaption>neg_elbo:" in f)
    for label in ("a train", "a test", "b train", "b test"):  # both runs' lines, in one plot's legend
        assert f">{label}<" in neg_elbo
    # one column a run; the rows where they differ are marked, those where they agree are not
    assert re.search(r'<tr class=differs><td>model\.latent_dim</td><td>2</td><td>3</td></tr>', text)
    assert '<tr><td>model.hidden</td><td>[32]</td><td>[32]</td></tr>' in text
    assert "<tr class=differs><td>evaluated at</td>" in text and "not computed" in page.cells
    assert "a: samples.png" in text and "b: samples.png" not in text  # b was trained with --no-pictures
    assert not (a / "report.html").exists()


def test_a_run_never_evaluated_says_how_to_compute_its_figures(toy_runs, tmp_path):
    _, b = _runs(tmp_path, toy_runs)
    assert main(["report", str(b)]) == 0
    text = (b / "report.html").read_text()
    assert "Not computed: <code>condgen evaluate RUN_DIR</code>" in text
    assert "No pictures: the runs were trained with --no-pictures." in text


@pytest.mark.parametrize("case, message", [
    ("missing", "no run directory at"),
    ("damaged", "metrics.jsonl' line 2 is not JSON"),
    ("no epoch", "metrics.jsonl' line 1 is not a line of figures with an epoch number"),
    ("empty", "holds no epoch yet: the run's first epoch has not finished"),
    ("not a run", "has no metrics.jsonl: it is not a run directory condgen train wrote"),
    ("export", "has no metrics.jsonl: it is a model folder of condgen export, which keeps no learning curves"),
    ("two without --out", "2 runs compared need a page of their own: give --out compare.html"),
    ("not html", "--out 'report.png': the report is a web page; name a file ending in .html"),
    ("no such folder", "its directory"),
])
def test_a_wrong_run_or_out_is_one_line(toy_runs, tmp_path, capsys, case, message):
    a, b = _runs(tmp_path, toy_runs)
    metrics = a / "metrics.jsonl"
    args = [str(a)]
    if case == "missing":
        args = [str(tmp_path / "nosuch")]
    elif case == "damaged":
        metrics.write_text(metrics.read_text().splitlines()[0] + "\n{\"epoch\": 2, \"test_lo\n")
    elif case == "no epoch":
        metrics.write_text('{"test_loss": 1.0}\n')
    elif case == "empty":
        metrics.write_text("")
    elif case == "not a run":
        args = [str(tmp_path)]
    elif case == "export":
        assert main(["export", str(a), str(tmp_path / "model")]) == 0
        capsys.readouterr()
        args = [str(tmp_path / "model")]
    elif case == "two without --out":
        args = [str(a), str(b)]
    elif case == "not html":
        args = [str(a), "--out", "report.png"]
    elif case == "no such folder":
        args = [str(a), "--out", str(tmp_path / "no" / "such" / "r.html")]
    assert main(["report", *args]) == 2
    assert message in one_error_line(capsys)


def test_the_page_loads_in_chromium_with_its_plots_drawn(browser, toy_runs, tmp_path):
    a, b = _runs(tmp_path, toy_runs)
    out = tmp_path / "compare.html"
    assert main(["report", str(a), str(b), "--out", str(out)]) == 0
    console_errors(browser)  # what earlier pages logged
    browser.get(out.as_uri())
    plots = browser.execute_script(
        "return [...document.querySelectorAll('svg')].map(s => [s.getBoundingClientRect().width,"
        " s.getBoundingClientRect().height, s.querySelectorAll('path').length])")
    assert len(plots) == 6
    for width, height, paths in plots:
        assert width > 200 and height > 100 and paths > 10  # drawn: axes, ticks and the runs' lines
    images = browser.execute_script("return [...document.images].map(i => i.complete && i.naturalWidth)")
    assert len(images) == 3 and all(w > 0 for w in images)
    assert console_errors(browser) == []
    browser.save_screenshot(str(tmp_path / "report.png"))
