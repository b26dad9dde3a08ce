"""``condgen demo`` in a real browser: headless Chromium, driven by Selenium, on small runs of real MNIST.

The label page is judged by the label example's classifier (``examples/mnist_label/classifier.py``), trained
apart from the CVAE; the inpainting page by the pixels it was given, which must come back unchanged.
Screenshots go to each test's temporary directory.
"""

from __future__ import annotations

import io
import socket
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from browser import console_errors
from condgen.cli import main

pytest.importorskip("gradio")

REPO = Path(__file__).resolve().parents[1]
SIDE, GAP, COLUMNS = 28, 2, 10  # MNIST's digits, the grid's gap, and the page's columns for one row
WAIT = 60  # seconds: a shared CI machine can be slow to start a page


@pytest.fixture(scope="module")
def classifier(mnist_dir):
    """The label example's digit CNN, trained here for 1 epoch (the example trains 5, 70 s; one is enough to tell
    digits apart), checked on 2,000 test digits."""
    sys.path.insert(0, str(REPO / "examples" / "mnist_label"))
    try:
        import classifier as example
    finally:
        sys.path.remove(str(REPO / "examples" / "mnist_label"))
    from condgen.data.mnist import read_mnist_dir

    data = read_mnist_dir(mnist_dir)
    saved = example.EPOCHS
    example.EPOCHS = 1
    try:
        model = example.train_classifier(data.train, log=lambda s: None)
    finally:
        example.EPOCHS = saved
    assert example.accuracy(model, data.test["image"][:2000], data.test["label"][:2000]) > 0.95
    return lambda images: example.classify(model, images)


def _train(mnist_dir: Path, out: Path, conditioner: str) -> Path:
    assert main(["train", "--conditioner", conditioner, "--epochs", "3", "--train-limit", "20000", "--test-limit",
                 "1000", "--seed", "0", "--data-dir", str(mnist_dir), "--out", str(out), "--no-pictures"]) == 0
    return out


@contextmanager
def serving(run_dir: Path) -> Iterator[str]:
    """The demo of ``run_dir`` served on a free port of this machine, for the duration: its URL."""
    from condgen.demo.page import start

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    page, url = start(run_dir, port=port, device="cpu")
    try:
        yield url
    finally:
        page.close()


def _open(browser, url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, WAIT).until(lambda d: d.find_elements(By.ID, "generate"))


def _choose(browser, elem_id: str, option: str) -> None:
    """Pick ``option`` in the drop-down ``elem_id``, as a user does: open it, click the option."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.find_element(By.CSS_SELECTOR, f"#{elem_id} input").click()
    item = WebDriverWait(browser, WAIT).until(lambda d: next(
        (li for li in d.find_elements(By.CSS_SELECTOR, "ul[role=listbox] li") if li.text.strip().endswith(option)),
        None))
    item.click()


def _generate(browser, expect: str) -> str:
    """Press Generate and wait for the status under the picture to start with ``expect``; the status."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    status = browser.find_element(By.ID, "status")
    before = status.text
    browser.find_element(By.ID, "generate").click()
    WebDriverWait(browser, WAIT).until(lambda d: status.text != before and status.text.startswith(expect))
    return status.text


def _paint_stroke(browser, elem_id: str, down: float) -> None:
    """Take the image editor ``elem_id``'s brush and drag it across the image shown (from just inside its left
    edge, clear of the toolbar, to beyond its right), ``down`` of its height below its middle, as a user paints."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    next(b for b in browser.find_elements(By.CSS_SELECTOR, f"#{elem_id} button") if b.get_attribute("title") == "Brush").click()
    canvas = max(browser.find_elements(By.CSS_SELECTOR, f"#{elem_id} canvas"), key=lambda c: c.size["width"])
    shown = canvas.size["height"] * 0.8  # the image, fitted into the canvas and centred
    ActionChains(browser).move_to_element_with_offset(canvas, round(-0.45 * shown), round(down * shown)) \
        .click_and_hold().move_by_offset(round(0.5 * shown), 0).move_by_offset(round(0.5 * shown), 0) \
        .release().perform()


def _picture(browser) -> np.ndarray:
    """The picture on the page, read back from the server as the browser got it: ``(H, W)`` grey uint8."""
    from selenium.webdriver.common.by import By

    src = browser.find_element(By.CSS_SELECTOR, "#samples img").get_attribute("src")
    with urllib.request.urlopen(src, timeout=WAIT) as response:
        return np.asarray(Image.open(io.BytesIO(response.read())).convert("L"))


def _cells(picture: np.ndarray, columns: int, count: int, first_column: int = 0) -> np.ndarray:
    """The first ``count`` images of a grid ``columns`` wide (after the ``first_column`` columns of row heads),
    at their own size again: ``(count, SIDE, SIDE)`` uint8."""
    k = picture.shape[1] // (columns * (SIDE + GAP) + GAP)  # the page shows small images k times larger
    small = picture[::k, ::k]
    per_line = columns - first_column
    out = []
    for i in range(count):
        r, c = divmod(i, per_line)
        top, left = GAP + r * (SIDE + GAP), GAP + (first_column + c) * (SIDE + GAP)
        out.append(small[top:top + SIDE, left:left + SIDE])
    return np.stack(out)


def test_label_demo_draws_the_chosen_digit_in_chromium(browser, mnist_dir, classifier, tmp_path_factory, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    run_dir = _train(mnist_dir, tmp_path_factory.mktemp("demo-label") / "run", "label")
    with serving(run_dir) as url:
        _open(browser, url)
        _choose(browser, "condition-label", "3")
        status = _generate(browser, "label=3: 16 samples of seed 0 in ")
        browser.save_screenshot(str(tmp_path / "demo-label.png"))
        picture = _picture(browser)
        digits = torch.from_numpy(_cells(picture, COLUMNS, 16)).float().div(255).unsqueeze(1)
        predicted = classifier(digits)
        assert (predicted == 3).float().mean() >= 0.75, (predicted.tolist(), status)

        # the same seed, the same picture (in a page opened afresh); another seed, another
        _open(browser, url)
        _choose(browser, "condition-label", "3")
        _generate(browser, "label=3: 16 samples of seed 0 in ")
        assert np.array_equal(_picture(browser), picture)
        seed = browser.find_element(By.CSS_SELECTOR, "#seed input")
        seed.clear()
        seed.send_keys("5")
        _generate(browser, "label=3: 16 samples of seed 5 in ")
        assert not np.array_equal(_picture(browser), picture)

        # the Model tab: the model card of the run
        next(b for b in browser.find_elements(By.CSS_SELECTOR, "button[role=tab]") if b.text == "Model").click()
        card = WebDriverWait(browser, WAIT).until(lambda d: d.find_element(By.ID, "model-card").text)
        card = " ".join(card.split())
        assert "conditioned on label" in card and "| `label` | `label` | label | condgen-label |" not in card
        assert "condgen sample run --condition label=... --num 16" in card
        assert browser.find_elements(By.CSS_SELECTOR, "#model-card table")  # its tables drawn as tables
        browser.save_screenshot(str(tmp_path / "demo-model.png"))
        assert console_errors(browser) == []


def test_inpaint_demo_keeps_the_observed_pixels_and_says_what_is_wrong_in_chromium(browser, mnist_dir, tmp_path,
                                                                                   tmp_path_factory):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from condgen.data.mnist import read_mnist_dir

    run_dir = _train(mnist_dir, tmp_path_factory.mktemp("demo-inpaint") / "run", "inpaint")
    digit = (read_mnist_dir(mnist_dir).test["image"][0, 0].numpy() * 255).round().astype(np.uint8)
    upload = tmp_path / "digit.png"
    Image.fromarray(digit).save(upload)
    with serving(run_dir) as url:
        _open(browser, url)
        browser.find_element(By.CSS_SELECTOR, "#condition-inpaint-image input[type=file]").send_keys(str(upload))
        WebDriverWait(browser, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#condition-inpaint-image canvas"))

        # painted by hand, with nothing painted: a message on the page, and the server goes on
        _choose(browser, "condition-inpaint-mask", "painted by hand (brush over what is missing)")
        assert "paint over the part of the image that is missing" in _generate(browser, "error: ")
        _choose(browser, "condition-inpaint-mask", "bottom-half")
        _generate(browser, "inpaint=50% observed: 16 samples of seed 0 in ")
        browser.save_screenshot(str(tmp_path / "demo-inpaint.png"))
        picture = _picture(browser)
        completions = _cells(picture, COLUMNS + 2, 16, first_column=2)
        head = _cells(picture, COLUMNS + 2, 1)[0]
        assert np.array_equal(head[:14], digit[:14])  # the row's head: the observed top half
        for completion in completions:
            assert np.array_equal(completion[:14], digit[:14])  # observed pixels come back unchanged
        assert len({c[14:].tobytes() for c in completions}) > 1  # the missing half is drawn, not copied

        # painted by hand: a stroke of the brush across the bottom of the digit is what is missing
        _choose(browser, "condition-inpaint-mask", "painted by hand (brush over what is missing)")
        _paint_stroke(browser, "condition-inpaint-image", down=0.3)
        status = _generate(browser, "inpaint=")
        observed = float(status.removeprefix("inpaint=").split("%")[0])
        assert 55 <= observed <= 97, status  # a stroke of the brush's radius, not the whole image
        browser.save_screenshot(str(tmp_path / "demo-inpaint-painted.png"))
        completions = _cells(_picture(browser), COLUMNS + 2, 16, first_column=2)
        for completion in completions:
            assert np.array_equal(completion[:12], digit[:12])  # the unpainted top comes back unchanged
        assert len({c[16:].tobytes() for c in completions}) > 1  # under the stroke, drawn
        assert console_errors(browser) == []
