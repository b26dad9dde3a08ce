"""How fast ``condgen demo`` answers: a 100-sample grid, pressed through the page's own HTTP API.

Starts the demo of a label run (``--run``, default the README's seed run ``runs/mnist-label``) on a free port of
this machine, as ``condgen demo`` does, then presses "Generate" through ``gradio_client`` (the client a browser's
page uses the same endpoint as: the request, the queue, the handler, the PNG written and its URL returned)
``--repeats`` times for each of 16 and 100 samples, alternating, with a new seed each press; the client
downloads each picture, as the browser does. It also times the drawing alone (``condgen.demo.drawing.Drawing.draw``) for the
same inputs. Prints medians and writes every time to ``--out``::

    python benchmarks/demo_latency.py --run runs/mnist-label --repeats 21
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default=str(REPO / "runs" / "mnist-label"), help="a label run directory")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "demo_latency.json"))
    args = parser.parse_args()

    from gradio_client import Client

    import condgen
    from condgen.demo.drawing import Drawing
    from condgen.demo.page import start

    port = free_port()
    started = time.perf_counter()
    page, url = start(args.run, port=port, device="cpu")
    start_seconds = time.perf_counter() - started
    drawing = Drawing(condgen.load_run(args.run, device="cpu"))  # the same run, for the drawing alone
    client = Client(url, verbose=False)
    times: dict[str, list[float]] = {"http_16": [], "http_100": [], "draw_16": [], "draw_100": []}
    try:
        for i in range(args.repeats):
            for num in (16, 100):  # alternated: a drift of the machine hits both alike
                t = time.perf_counter()
                picture, caption = client.predict("#3", num, i, api_name="/generate")  # the PNG, downloaded
                times[f"http_{num}"].append(time.perf_counter() - t)
                assert os.path.getsize(picture) > 1000, picture
                assert caption.startswith(f"label=3: {num} samples of seed {i}"), caption
                t = time.perf_counter()
                drawing.draw({"label": ["#3"]}, num, i)
                times[f"draw_{num}"].append(time.perf_counter() - t)
    finally:
        page.close()
    medians = {k: statistics.median(v) for k, v in times.items()}
    record = {
        "run": args.run,
        "repeats": args.repeats,
        "server_start_seconds": start_seconds,
        "median_seconds": medians,
        "seconds": times,
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
    }
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"server start (load the run, build the page): {start_seconds:.2f} s")
    for key, value in medians.items():
        print(f"{key:10s} median {value * 1000:7.1f} ms  (min {min(times[key]) * 1000:.1f}, max "
              f"{max(times[key]) * 1000:.1f}; {args.repeats} presses)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
