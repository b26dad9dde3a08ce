"""``condgen report``: one self-contained HTML page of a run, or of runs side by side.

The page holds everything in itself, so it opens from a file with no server and no network, and can be mailed
or attached: the learning curves are inline SVG drawn by matplotlib (one plot a term, the training split
solid and the test split dashed, each run its colour), the pictures base64 PNGs, the config and ``condgen
evaluate``'s figures tables (one column a run, the rows where runs differ marked). No script runs in it.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._version import __version__
from ..common.errors import CondgenError
from ..common.files import write_text_atomic
from ..runs.history import NOT_TERMS, RunHistory, read_history
from .grid import pyplot

REPORT_NAME = "report.html"
#: matplotlib's default colour cycle, one colour a run (a report of more runs cycles through it).
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
#: Terms drawn first, in this order; any other term after them, in the order the runs logged them.
TERM_ORDER = ("loss", "neg_elbo", "recon_nll", "kl", "gsnn_nll")

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .92em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.differs td:first-child { font-weight: bold; } tr.differs { background: #fff8e1; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; } .plots figure { margin: 0; }
.plots figure { width: 340px; } .plots svg { width: 340px; height: auto; }
figure figcaption { font-size: .9em; color: #555; }
.pictures img { image-rendering: pixelated; max-width: 100%; border: 1px solid #eee; }
.note { color: #666; font-size: .9em; }
"""


def report_labels(histories: Sequence[RunHistory]) -> list[str]:
    """A short name for each run: its directory's name, or its whole path where two runs share one."""
    names = [h.directory.name or str(h.directory) for h in histories]
    return [str(h.directory) if names.count(n) > 1 else n for h, n in zip(histories, names)]


def _terms(histories: Sequence[RunHistory]) -> list[str]:
    found: dict[str, None] = {}
    for history in histories:
        found.update(dict.fromkeys(history.terms))
    return [t for t in TERM_ORDER if t in found] + [t for t in found if t not in TERM_ORDER]


def _svg(fig: Any, salt: str) -> str:
    """``fig`` as an inline ``<svg>`` element; ``salt`` keeps its element ids apart from the other plots' on the
    page (and the page the same from one run of the command to the next)."""
    plt = pyplot()
    out = io.StringIO()
    with plt.rc_context({"svg.hashsalt": salt, "svg.fonttype": "none"}):  # text as text: small, and searchable
        fig.savefig(out, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = out.getvalue()
    return text[text.index("<svg"):]


def _plot(histories: Sequence[RunHistory], labels: Sequence[str], keys: Sequence[tuple[str, str]], title: str,
          ylabel: str, index: int) -> str | None:
    """One plot of figures ``keys`` (``(metrics key, line style)``) over the epochs of every run; None if no run
    logged any of them."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 3.1), dpi=100)
    drawn = False
    for i, (history, label) in enumerate(zip(histories, labels)):
        for key, style in keys:
            epochs, values = history.series(key)
            if not epochs:
                continue
            split = key.split("_", 1)[0] if "_" in key else ""
            name = f"{label} {split}".strip() if len(keys) > 1 else label
            ax.plot(epochs, values, style, color=COLOURS[i % len(COLOURS)], label=name,
                    marker="o" if len(epochs) == 1 else None, linewidth=1.6)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8)
    return _svg(fig, f"condgen-report-{index}")


def _curves(histories: Sequence[RunHistory], labels: Sequence[str]) -> list[str]:
    plots = []
    for term in _terms(histories):
        plots.append((_plot(histories, labels, [(f"train_{term}", "-"), (f"test_{term}", "--")], term,
                            "nats per item", len(plots)), f"{term}: the training split's mean over each epoch (solid) "
                      "and the test split's after it (dashed)"))
    plots.append((_plot(histories, labels, [("lr", "-")], "learning rate", "lr", len(plots)),
                  "the learning rate at each epoch's last step"))
    plots.append((_plot(histories, labels, [("train_seconds", "-"), ("eval_seconds", "--")], "seconds per epoch",
                        "seconds", len(plots)), "training (solid) and evaluation (dashed) seconds of each epoch"))
    return [f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>" for svg, caption in plots if svg]


def _flat(config: Any, prefix: str = "") -> dict[str, str]:
    """A config as ``{"model.latent_dim": "2", "conditioners[0].name": "label", ...}``."""
    if isinstance(config, dict):
        out: dict[str, str] = {}
        for key, value in config.items():
            out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(config, list) and any(isinstance(v, (dict, list)) for v in config):
        out = {}
        for i, value in enumerate(config):
            out.update(_flat(value, f"{prefix}[{i}]"))
        return out
    return {prefix: json.dumps(config)}


def _table(rows: dict[str, list[str]], labels: Sequence[str], numeric: bool = False) -> str:
    """A table of ``rows`` ``{name: one cell a run}``; with several runs, a row whose cells differ is marked."""
    head = "".join(f"<th>{html.escape(label)}</th>" for label in labels)
    body = []
    for name, cells in rows.items():
        differs = len(labels) > 1 and len(set(cells)) > 1
        tds = "".join(f'<td class="num">{html.escape(c)}</td>' if numeric else f"<td>{html.escape(c)}</td>"
                      for c in cells)
        body.append(f'<tr{" class=differs" if differs else ""}><td>{html.escape(name)}</td>{tds}</tr>')
    return f"<table><tr><th></th>{head}</tr>{''.join(body)}</table>"


def _config_table(histories: Sequence[RunHistory], labels: Sequence[str]) -> str:
    flat = [_flat(h.config) for h in histories]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return _table({k: [f.get(k, "-") for f in flat] for k in keys}, labels)


def _evaluation_table(histories: Sequence[RunHistory], labels: Sequence[str]) -> str:
    if all(h.evaluation is None for h in histories):
        return ('<p class="note">Not computed: <code>condgen evaluate RUN_DIR</code> computes the test split\'s '
                '−ELBO and the importance-sampled −log p(x|c), and keeps them for this page.</p>')
    keys = list(dict.fromkeys(k for h in histories for k, v in (h.evaluation or {}).items()
                              if isinstance(v, (int, float)) and not isinstance(v, bool)))
    rows: dict[str, list[str]] = {}
    for key in keys:
        rows[key] = [_number((h.evaluation or {}).get(key)) for h in histories]
    rows["evaluated at"] = [str((h.evaluation or {}).get("evaluated_at", "not computed")) for h in histories]
    notes = [f"{label}: the figures are of epoch {h.evaluation.get('epoch')}, not of its last, epoch "
             f"{h.epochs[-1]['epoch']} (evaluate it again)" for h, label in zip(histories, labels)
             if h.evaluation is not None and h.evaluation.get("epoch") != h.epochs[-1]["epoch"]]
    return _table(rows, labels, numeric=True) + "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4f}"


def _last_epoch_table(histories: Sequence[RunHistory], labels: Sequence[str]) -> str:
    keys = [k for k in dict.fromkeys(k for h in histories for k in h.epochs[-1]) if k not in NOT_TERMS or k == "epoch"]
    return _table({k: [_number(h.epochs[-1].get(k)) for h in histories] for k in keys}, labels, numeric=True)


def _pictures(histories: Sequence[RunHistory], labels: Sequence[str]) -> str:
    if not any(h.pictures for h in histories):
        return '<p class="note">No pictures: the runs were trained with --no-pictures.</p>'
    parts = []
    for history, label in zip(histories, labels):
        for name, data in history.pictures.items():
            encoded = base64.b64encode(data).decode("ascii")
            caption = f"{label}: {name}" if len(histories) > 1 else name
            parts.append(f'<figure><img src="data:image/png;base64,{encoded}" alt="{html.escape(caption)}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return f'<div class="pictures">{"".join(parts)}</div>'


def render_report(histories: Sequence[RunHistory]) -> str:
    """The page of ``histories`` (one run, or several side by side), as HTML text."""
    labels = report_labels(histories)
    title = (f"condgen report: {labels[0]}" if len(histories) == 1
             else f"condgen report: {len(histories)} runs compared")
    runs = "".join(f"<li><code>{html.escape(str(h.directory))}</code>: {len(h.epochs)} epoch(s) logged, the last "
                   f"epoch {h.epochs[-1]['epoch']}</li>" for h in histories)
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f"<ul>{runs}</ul>",
        f'<p class="note">Made by condgen {__version__} on {made}.</p>',
        "<h2>Learning curves</h2>",
        f'<div class="plots">{"".join(_curves(histories, labels))}</div>',
        "<h2>The last epoch</h2>",
        _last_epoch_table(histories, labels),
        "<h2>Evaluation</h2>",
        _evaluation_table(histories, labels),
        "<h2>Pictures</h2>",
        _pictures(histories, labels),
        "<h2>Config</h2>",
        _config_table(histories, labels),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(sections) + "\n</body></html>\n")


def write_report(run_dirs: Sequence[str | Path], out: str | Path | None = None) -> Path:
    """Write the report of ``run_dirs`` to ``out`` (default ``RUN_DIR/report.html`` for one run; needed for
    several): the file written."""
    if not run_dirs:
        raise CondgenError("give at least one run directory")
    if out is None:
        if len(run_dirs) > 1:
            raise CondgenError(f"{len(run_dirs)} runs compared need a page of their own: give --out compare.html")
        out = Path(run_dirs[0]) / REPORT_NAME
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise CondgenError(f"--out {str(out)!r}: the report is a web page; name a file ending in .html")
    histories = [read_history(d) for d in run_dirs]
    page = render_report(histories)
    if not out.parent.is_dir():
        raise CondgenError(f"--out {str(out)!r}: its directory {str(out.parent)!r} does not exist")
    write_text_atomic(out, page, "report")
    return out
