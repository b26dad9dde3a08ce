"""The screenshots of ``condgen demo`` and ``condgen report`` in the README and the docs, taken in headless Chromium.

Serves the demo of a label run and of an inpainting run as ``condgen demo`` does, presses Generate in the
browser as a user would, and saves each page; then opens the label run's report (``condgen report``)::

    python examples/demo/screenshots.py --label-run runs/mnist-label --inpaint-run runs/mnist-inpaint \\
        --data-dir ../shared/data/mnist --out docs/images

Needs Debian's ``chromium`` and ``chromium-driver`` and ``pip install selenium 'condgen[demo]'``.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1300,900"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def serve(run_dir: str):
    from condgen.demo.page import start

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return start(run_dir, port=port, device="cpu")


def wait(driver, condition, seconds: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds).until(condition)


def choose(driver, elem_id: str, option: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input").click()
    wait(driver, lambda d: next((li for li in d.find_elements(By.CSS_SELECTOR, "ul[role=listbox] li")
                                 if li.text.strip().endswith(option)), None)).click()


def generate(driver, expect: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "generate").click()
    wait(driver, lambda d: d.find_element(By.ID, "status").text.startswith(expect))
    time.sleep(0.5)  # the picture's fade-in


def main() -> None:
    from selenium.webdriver.common.by import By

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label-run", required=True)
    parser.add_argument("--inpaint-run", required=True)
    parser.add_argument("--data-dir", required=True, help="MNIST, for a test digit to complete")
    parser.add_argument("--out", default="docs/images")
    args = parser.parse_args()
    out = Path(args.out)
    driver = browser()
    try:
        page, url = serve(args.label_run)
        try:
            driver.get(url)
            wait(driver, lambda d: d.find_elements(By.ID, "generate"))
            choose(driver, "condition-label", "all classes (a row each)")
            slider = driver.find_element(By.CSS_SELECTOR, "#num input[type=number]")
            slider.clear()
            slider.send_keys("10")
            generate(driver, "10 rows of 10")
            driver.save_screenshot(str(out / "demo-generate.png"))
            next(b for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if b.text == "Model").click()
            wait(driver, lambda d: d.find_element(By.ID, "model-card").text)
            driver.save_screenshot(str(out / "demo-model.png"))
        finally:
            page.close()

        from condgen.data.mnist import read_mnist_dir

        digit = read_mnist_dir(args.data_dir).test["image"][3, 0].numpy()
        with tempfile.TemporaryDirectory() as tmp:
            upload = Path(tmp) / "digit.png"
            Image.fromarray((digit * 255).round().astype(np.uint8)).save(upload)
            page, url = serve(args.inpaint_run)
            try:
                driver.get(url)
                wait(driver, lambda d: d.find_elements(By.ID, "generate"))
                driver.find_element(By.CSS_SELECTOR, "#condition-inpaint-image input[type=file]").send_keys(str(upload))
                wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#condition-inpaint-image canvas"))
                choose(driver, "condition-inpaint-mask", "quadrants:2")
                generate(driver, "inpaint=")
                driver.save_screenshot(str(out / "demo-inpaint.png"))
            finally:
                page.close()
            from condgen.pictures.report import write_report

            report = write_report([args.label_run], Path(tmp) / "report.html")
            driver.set_window_size(1200, 1400)
            driver.get(report.resolve().as_uri())
            driver.save_screenshot(str(out / "report.png"))
    finally:
        driver.quit()
    print(f"wrote {out}/demo-generate.png, demo-model.png, demo-inpaint.png and report.png")


if __name__ == "__main__":
    main()
