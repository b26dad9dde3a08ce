"""``condgen demo``'s drawing, its widgets and the widget hook, without a browser (tests/test_demo_browser.py
drives the page itself in Chromium)."""

from __future__ import annotations

import socket
import sys
import warnings

import numpy as np
import pytest
import torch

import condgen
from condgen.cli import main
from condgen.demo.drawing import COLUMNS, Drawing
from condgen.demo.widgets import TextWidget
from condgen.plugin.registry import PluginWarning, list_plugins, registry
from helpers import one_error_line, toy_config

GAP = 2  # pixels between the grid's images (condgen.pictures.grid.grid_image)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two small runs on the toy data: one on ``label`` (trained with condition dropout, so it may be left out)
    and ``sign``, a third party's conditioner with no widget; one on ``left``, which gives half of x."""
    from condgen.plugin.registry import get_plugin_manager
    from helpers import LeftPlugin, SignPlugin, ToyData

    pm = get_plugin_manager()
    for plugin, name in ((ToyData(), "toy-data"), (SignPlugin(), "sign-plugin"), (LeftPlugin(), "left-plugin")):
        pm.register(plugin, name=name)
    tmp = tmp_path_factory.mktemp("demo")
    config = toy_config(epochs=2, condition_dropout={"label": 0.2}).model_dump(mode="json")
    config["conditioners"].append({"name": "sign"})
    both = condgen.train(condgen.RunConfig.parse(config), tmp / "both", pictures=False, log=lambda s: None)
    left = toy_config(epochs=1).model_dump(mode="json")
    left["conditioners"] = [{"name": "left"}]
    halves = condgen.train(condgen.RunConfig.parse(left), tmp / "left", pictures=False, log=lambda s: None)
    yield {"both": condgen.load_run(both.directory), "left": condgen.load_run(halves.directory),
           "both_dir": both.directory}
    for name in ("toy-data", "sign-plugin", "left-plugin"):
        pm.unregister(name=name)


def test_the_page_takes_each_conditioners_widget_and_a_text_box_for_one_without(runs):
    drawing = Drawing(runs["both"])
    assert type(drawing.widgets["label"]).__name__ == "LabelWidget"  # the label plugin's, through the hook
    assert type(drawing.widgets["sign"]) is TextWidget  # a third party's conditioner with no widget


def test_the_same_inputs_and_seed_give_the_same_picture(runs):
    drawing = Drawing(runs["both"])
    inputs = {"label": ["#1"], "sign": ["0.5"]}
    first, again = drawing.draw(inputs, 16, 3), drawing.draw(inputs, 16.0, 3)  # a slider may give 16.0
    other = drawing.draw(inputs, 16, 4)
    assert np.array_equal(first.image, again.image) and not np.array_equal(first.image, other.image)
    assert first.caption.startswith("label=1 sign=0.5: 16 samples of seed 3 in ")
    # the picture is the samples of run.sample with that seed, enlarged: pixel for pixel
    samples = runs["both"].sample({"label": 1, "sign": [[0.5]]}, num=16, seed=3)
    side = 6 + GAP
    k = first.image.shape[1] // (COLUMNS * side + GAP)
    cell = first.image[::k, ::k][GAP:GAP + 6, GAP:GAP + 6, 0]  # the first sample, one pixel per pixel again
    assert np.array_equal(cell, (samples[0, 0].numpy() * 255).round().astype(np.uint8))


def test_several_conditions_make_a_row_each_and_a_left_out_one_is_absent(runs):
    drawing = Drawing(runs["both"])
    shown = drawing.draw({"label": ["all"], "sign": ["-1,1"]}, 4, 0)
    assert shown.caption.startswith("4 rows of 4 (row 1: label=0 sign=-1; row 2: label=0 sign=1; row 3: label=1")
    assert shown.image.shape[0] // (shown.image.shape[0] // (4 * 8 + GAP)) == 4 * 8 + GAP  # four rows of images
    left_out = drawing.draw({"label": None, "sign": ["1"]}, 4, 0)  # the run learnt an absent label
    assert left_out.caption.startswith("sign=1: 4 samples")
    with pytest.raises(condgen.ConditionError, match="'sign' cannot be left out: this run was trained without"):
        drawing.draw({"label": ["#0"], "sign": None}, 4, 0)


@pytest.mark.parametrize("inputs, num, seed, message", [
    ({"label": ["#7"], "sign": ["1"]}, 4, 0, "class 7 is out of range; allowed are integers 0..1"),
    ({"label": ["#0"], "sign": ["one"]}, 4, 0, "sign='one' must be numbers"),
    ({"label": ["#0"], "sign": [""]}, 4, 0, "type a value for 'sign', as after --condition sign="),
    ({"label": ["#0"], "sign": ["1"]}, 0, 0, "the number of samples must be a whole number between 1 and 100"),
    ({"label": ["#0"], "sign": ["1"]}, 2.5, 0, "got 2.5"),
    ({"label": ["#0"], "sign": ["1"]}, 4, -1, "the seed must be a whole number between 0 and"),
    ({"label": ["#0"], "sign": ["1"]}, 4, None, "the seed must be a whole number"),
    ({"label": ["all"], "sign": [",".join(["1"] * 6)]}, 100, 0, "2 rows of 100 samples"),
])
def test_a_bad_value_is_one_readable_error(runs, inputs, num, seed, message):
    if "rows of 100" in message:  # 2 x 6 rows of 100 is over the page's 1,000
        message = "12 rows of 100 samples make 1,200; the page draws at most 1,000"
    with pytest.raises(condgen.CondgenError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Drawing(runs["both"]).draw(inputs, num, seed)


def test_a_condition_that_gives_part_of_x_heads_its_row_and_keeps_those_pixels(runs):
    run = runs["left"]
    image = torch.rand(1, 6, 6)
    drawing = Drawing(run)
    assert type(drawing.widgets["left"]) is TextWidget
    # the text box takes what --condition takes; the toy "left" conditioner's text form is a number
    cond = run.conditioners["left"]
    value = cond.conditions_from_value(image)
    shown = drawing.draw({"left": [value]}, 12, 0)  # a tensor is a value too
    k = shown.image.shape[1] // ((COLUMNS + 2) * 8 + GAP)
    small = shown.image[::k, ::k, 0]
    assert small.shape[0] == 2 * 8 + GAP  # 12 samples wrap at 10: two lines, the head on the first
    head = small[GAP:GAP + 6, GAP:GAP + 6]
    first = small[GAP:GAP + 6, GAP + 2 * 8:GAP + 2 * 8 + 6]
    observed = (image[0, :, :3] * 255).round().numpy().astype(np.uint8)
    assert np.array_equal(first[:, :3], observed)  # the given half comes back unchanged
    assert np.array_equal(head[:, :3], observed)


# -- the built-in widgets ------------------------------------------------------------------------------
def test_label_widget_offers_the_classes_by_name_and_all():
    from condgen_label import LabelConditioner
    from condgen_label.widget import LabelWidget

    cond = LabelConditioner({"num_classes": 3})
    cond.name = "label"
    cond.learn_class_names({"label": ["T-shirt", "Trouser", "2"]})
    widget = LabelWidget(cond)
    assert widget.choices() == [("T-shirt (#0)", "#0"), ("Trouser (#1)", "#1"), ("2", "#2"),
                                ("all classes (a row each)", "all")]
    assert cond.conditions_from_value(widget.value("#1")).tolist() == [1]
    assert cond.conditions_from_value(widget.value("all")).tolist() == [0, 1, 2]
    with pytest.raises(condgen.ConditionError, match="choose a class for 'label'"):
        widget.value(None)


def test_regression_widget_spans_each_target_in_its_own_units():
    from condgen_regression import RegressionConditioner
    from condgen_regression.widget import RegressionWidget

    cond = RegressionConditioner({"targets": ["ink", "slant"]})
    cond.name = "regression"
    cond.load_state({"sources": {"ink": "field", "slant": "field"}, "mean": [0.2, -10.0], "std": [0.05, 4.0]})
    widget = RegressionWidget(cond)
    assert widget.ranges() == [("ink", 0.05, 0.35, 0.0015, 0.2), ("slant", -22.0, 2.0, 0.12, -10.0)]
    assert cond.conditions_from_value(widget.value(0.25, -3.0)).tolist() == [[0.25, -3.0]]


def test_inpaint_widget_reads_an_upload_of_any_size_and_a_painted_mask():
    from condgen_inpaint import InpaintConditioner
    from condgen_inpaint.widget import DRAWN, InpaintWidget

    cond = InpaintConditioner()
    cond.name = "inpaint"
    cond.load_state({"image_shape": [1, 28, 28]})
    widget = InpaintWidget(cond)
    assert widget.masks()[:3] == [DRAWN, "quadrants:1", "quadrants:2"]
    upload = np.zeros((56, 56, 4), np.uint8)  # twice the model's size, RGBA as the editor gives it
    upload[..., 3] = 255
    upload[:, 20:36, :3] = 255  # a white bar
    strokes = np.zeros((56, 56, 4), np.uint8)
    strokes[28:, :, 3] = 255  # painted over the bottom half
    value = widget.value({"background": upload, "layers": [strokes]}, DRAWN)
    image, mask = value["image"], value["mask"]
    assert image.shape == (1, 28, 28) and mask.shape == (28, 28)
    assert image[0, :, 11:17].min() == 1.0 and image[0, :, :8].max() == 0.0  # resized (bilinear), grey
    assert mask[:14].min() == 1.0 and mask[14:].max() == 0.0  # 1 = observed: the unpainted top half
    c = cond.conditions_from_value(value)
    assert c.shape == (1, 2, 28, 28)
    by_name = cond.conditions_from_value(widget.value({"background": upload, "layers": []}, "bottom-half"))
    assert torch.equal(by_name, c)  # the named mask hides the same half
    with pytest.raises(condgen.ConditionError, match="paint over the part of the image that is missing"):
        widget.value({"background": upload, "layers": []}, DRAWN)
    with pytest.raises(condgen.ConditionError, match="upload an image for 'inpaint' to complete"):
        widget.value({"background": None, "layers": []}, "bottom-half")
    with pytest.raises(condgen.ConditionError, match="nosuch"):
        cond.conditions_from_value(widget.value({"background": upload, "layers": []}, "nosuch"))


# -- a third party's widget, through the hook --------------------------------------------------------
class SignWidget(condgen.Widget):
    """A slider for the toy ``sign`` conditioner, as a third-party plugin would write it."""

    conditioner = "sign"

    def build(self, gr):
        return [gr.Slider(-1, 1, value=0.5, label="sign")]

    def value(self, number):
        return [[float(number)]]


class SignWidgetPlugin:
    @condgen.hookimpl
    def condgen_register_widgets(self, register):
        register(SignWidget)


class BrokenValue(SignWidget):
    def value(self, number):
        raise KeyError("oops")


class BrokenConstructor(SignWidget):
    def __init__(self, conditioner):
        raise RuntimeError("no")


def _plugin(widget: type) -> object:
    class Plugin:
        @condgen.hookimpl
        def condgen_register_widgets(self, register):
            register(widget)

    return Plugin()


def test_hook_condgen_register_widgets(register_plugin, runs):
    register_plugin(SignWidgetPlugin(), "sign-widget")
    assert registry().widgets["sign"] is SignWidget
    assert registry().widgets.keys() >= {"label", "regression", "inpaint"}  # the built-in plugins', same hook
    assert {p.name: p for p in list_plugins()}["sign-widget"].widgets == ["sign"]
    drawing = Drawing(runs["both"])
    assert isinstance(drawing.widgets["sign"], SignWidget)
    assert drawing.draw({"label": ["#0"], "sign": [0.25]}, 2, 0).caption.startswith("label=0 sign=0.25: 2 samples")


@pytest.mark.parametrize("bad, problem", [
    (type("NotAWidget", (), {"conditioner": "sign"}), "which is not a subclass of condgen.Widget"),
    (type("NoName", (SignWidget,), {"conditioner": "Sign!"}), "NoName.conditioner must be the name of the conditioner"),
    (type("NoValue", (condgen.Widget,), {"conditioner": "sign", "build": SignWidget.build}),
     "NoValue does not implement value"),
])
def test_an_invalid_widget_marks_its_plugin_broken(register_plugin, bad, problem):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        register_plugin(_plugin(bad), "bad-widget")
        assert "sign" not in registry().widgets
    assert problem in {p.name: p for p in list_plugins()}["bad-widget"].error
    assert any(problem in str(w.message) for w in caught if issubclass(w.category, PluginWarning))


def test_a_broken_widget_is_a_message_or_a_text_box_never_a_crash(register_plugin, runs):
    register_plugin(_plugin(BrokenValue), "broken-value")
    with pytest.raises(condgen.PluginError, match=r"the 'sign' input failed: BrokenValue.value of plugin "
                                                  r"'broken-value' raised KeyError: 'oops' \(a bug in that plugin\)"):
        Drawing(runs["both"]).draw({"label": ["#0"], "sign": [0.5]}, 2, 0)


def test_a_widget_that_cannot_be_built_gives_way_to_the_text_box(register_plugin, runs):
    register_plugin(_plugin(BrokenConstructor), "broken-init")
    with pytest.warns(PluginWarning, match="widget BrokenConstructor of plugin 'broken-init' for conditioner 'sign' "
                                           r"raised in its constructor \(RuntimeError: no\); the page shows a text box"):
        drawing = Drawing(runs["both"])
    assert type(drawing.widgets["sign"]) is TextWidget
    assert drawing.draw({"label": ["#0"], "sign": ["1"]}, 2, 0).caption.startswith("label=0 sign=1")


def test_two_widgets_for_one_conditioner_are_withdrawn(register_plugin, runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)
        register_plugin(SignWidgetPlugin(), "sign-widget")
        register_plugin(_plugin(type("Other", (SignWidget,), {})), "other-sign-widget")
        assert registry().withdrawn("widget", "sign") is not None
    with pytest.raises(condgen.PluginError, match="widget 'sign' is registered by both plugin 'other-sign-widget'"):
        Drawing(runs["both"])


# -- the command --------------------------------------------------------------------------------------
def test_demo_without_gradio_is_one_line_naming_the_extra(runs, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # as if it were not installed: importing it fails
    assert main(["demo", str(runs["both_dir"])]) == 2
    assert "condgen demo needs Gradio, an optional extra: pip install 'condgen[demo]'" in one_error_line(capsys)


def test_demo_on_a_port_in_use_is_one_line(runs, capsys):
    pytest.importorskip("gradio")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["demo", str(runs["both_dir"]), "--port", str(port)]) == 2
    assert f"cannot serve on 127.0.0.1:{port}:" in one_error_line(capsys)
    assert main(["demo", str(runs["both_dir"]), "--port", "70000"]) == 2
    assert "--port must be a port number from 1 to 65535, got 70000" in one_error_line(capsys)
