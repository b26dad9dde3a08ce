"""The demo page and its server: the one module of condgen that imports Gradio (``pip install 'condgen[demo]'``).

The page has two tabs. **Generate**: an input for each conditioner of the run (:mod:`.widgets`), a "leave it
out" box for each the run learnt to do without, the number of samples and the seed, and the picture with
its caption; a bad value is a message under the picture, and the server goes on. **Model**: the model card
that ``condgen export`` writes (what it was trained on, its conditioners, ``condgen evaluate``'s figures).
The model is loaded once, when the server starts; presses are answered one at a time.
"""

from __future__ import annotations

import os
import socket
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from ..common.errors import CondgenError
from ..common.files import describe_os_error
from ..runs.export import model_card
from ..runs.run import Run
from ..runs.rundir import kept_evaluation
from ..runs.store import load_run, read_run
from . import DEFAULT_HOST, DEFAULT_PORT
from .drawing import MAX_PER_ROW, Drawing
from .widgets import TextWidget, warn_broken

#: Samples a row when the page opens.
DEFAULT_NUM = 16
INSTALL_HINT = "pip install 'condgen[demo]'"


def import_gradio() -> ModuleType:
    """The ``gradio`` module, with its usage reports off (the page is local, and may be offline); a one-line
    :class:`condgen.CondgenError` naming the extra where it is not installed."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError as exc:
        raise CondgenError(f"condgen demo needs Gradio, an optional extra: {INSTALL_HINT} ({exc})") from None
    return gradio


def _theme(gr: ModuleType) -> Any:
    # the system's fonts: the default theme fetches web fonts, which an offline machine cannot
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"])


def _inputs(gr: ModuleType, drawing: Drawing, name: str) -> list[Any]:
    """The components of conditioner ``name``'s widget, in a box of their own; a widget whose ``build`` raises is
    reported and its box hidden, and a text box stands in."""
    widget = drawing.widgets[name]
    with gr.Group() as box:
        try:
            components = list(widget.build(gr))
            if not components:
                raise ValueError("build returned no components")
            return components
        except Exception as exc:  # a plugin's bug: the page still works, with the text box
            warn_broken(type(widget), name, "build", exc)
    box.visible = False
    drawing.widgets[name] = TextWidget(widget.cond)
    with gr.Group():
        return list(drawing.widgets[name].build(gr))


def build_page(run: Run, card: str, title: str) -> Any:
    """The page (a ``gradio.Blocks``) of ``run``, its Model tab showing ``card`` (Markdown)."""
    gr = import_gradio()
    drawing = Drawing(run)
    with gr.Blocks(title=title, analytics_enabled=False) as page:
        gr.Markdown(f"## {title}")
        with gr.Tab("Generate"):
            with gr.Row():
                with gr.Column(scale=1):
                    layout: list[tuple[str, int, bool]] = []  # (conditioner, its components, leave-out box?)
                    components: list[Any] = []
                    for name in run.conditioners:
                        made = _inputs(gr, drawing, name)
                        components += made
                        optional = name in run.optional
                        if optional:
                            components.append(gr.Checkbox(label=f"leave {name} out (the model learnt to do without)",
                                                          elem_id=f"leave-out-{name}"))
                        layout.append((name, len(made), optional))
                    num = gr.Slider(1, MAX_PER_ROW, value=DEFAULT_NUM, step=1, label="samples (per row of conditions)",
                                    elem_id="num")
                    seed = gr.Number(value=0, precision=0, label="seed (the same seed, the same picture)",
                                     elem_id="seed")
                    button = gr.Button("Generate", variant="primary", elem_id="generate")
                with gr.Column(scale=2):
                    picture = gr.Image(label="samples", show_label=False, type="numpy", format="png",
                                       interactive=False, elem_id="samples", buttons=["download"])
                    status = gr.Markdown(elem_id="status")
        with gr.Tab("Model"):
            gr.Markdown(card, elem_id="model-card")

        def generate(*args: Any) -> tuple[Any, str]:
            inputs: dict[str, Any] = {}
            at = 0
            for name, count, optional in layout:
                values, at = args[at:at + count], at + count
                if optional:
                    values, at = (None if args[at] else values), at + 1
                inputs[name] = values
            try:
                shown = drawing.draw(inputs, args[at], args[at + 1])
            except CondgenError as exc:
                return None, f"error: {exc}"
            except Exception as exc:  # a bug: said on the page and in the server's log, and the server goes on
                traceback.print_exc(file=sys.stderr)
                return None, f"internal error: {type(exc).__name__}: {exc} (a bug; the server goes on)"
            return shown.image, shown.caption

        button.click(generate, inputs=[*components, num, seed], outputs=[picture, status], api_name="generate")
    return page


def _check_port(host: str, port: int) -> None:
    """A one-line error, before anything loads, where ``host:port`` cannot be served on."""
    if not 0 < port < 65536:
        raise CondgenError(f"--port must be a port number from 1 to 65535, got {port}")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            # as the server binds: a port a closed demo left in TIME_WAIT is free to serve on again
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise CondgenError(f"cannot serve on {host}:{port}: {describe_os_error(exc)}; choose another --port "
                           "(or --host)") from None


def start(
    run_dir: str | Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, device: str = "auto"
) -> tuple[Any, str]:
    """Load the run once and serve its page on ``host:port`` in the background: ``(page, its URL)``;
    ``page.close()`` stops it."""
    gr = import_gradio()  # the missing extra is said before a run loads
    _check_port(host, port)
    run = load_run(run_dir, device=device)
    stored = read_run(run_dir, model_only=True)
    card = model_card(stored, kept_evaluation(stored.path.parent), stored.path.parent)
    card = card.split("---\n", 2)[-1]  # the hub's front matter is not for the page
    page = build_page(run, card, f"condgen demo: {Path(run_dir).name or run_dir}")
    page.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False,
                share=False, theme=_theme(gr), footer_links=[])
    return page, f"http://{host}:{port}/"
