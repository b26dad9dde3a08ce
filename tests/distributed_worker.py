"""Run by tests/test_distributed.py under torchrun: trains through condgen's Python API and writes
what each process saw, for the test to compare across processes.

    python -m torch.distributed.run --nproc_per_node 2 --standalone tests/distributed_worker.py SPEC.json

SPEC is ``{"config": {...}, "jobs": [{"name": ..., "out": DIR, "resume": bool, "epochs": E}, ...]}``;
a job with ``"nan_on_rank": R`` gives process R training images that are all NaN. The jobs run in
order in one process group, made here (condgen uses a group its caller made): a job that raises
must raise on every process, with the group still usable by the next. Each
process writes ``RESULTS/rank{R}.json`` (``{job: error message or None}``) and, per job that
trained, ``RESULTS/{job}-rank{R}.pt``: its final weights.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

import condgen
import condgen.runs.build
import condgen.training.loop

LOAD_DATASET = condgen.training.loop.load_dataset
CHECK_LIKELIHOOD = condgen.runs.build._check_likelihood_fits


def nan_images(config: condgen.DataConfig) -> condgen.DataSplits:
    data = LOAD_DATASET(config)
    # floats: the loaded images are uint8 levels, which cannot hold a NaN
    data.train = {**data.train, "image": torch.full(data.train["image"].shape, float("nan"))}
    return data


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    results, rank = Path(spec["results"]), int(os.environ["RANK"])
    dist.init_process_group("gloo")
    outcome: dict[str, str | None] = {}
    try:
        for job in spec["jobs"]:
            config = condgen.RunConfig.parse({**spec["config"], "train": {**spec["config"]["train"],
                                                                          "epochs": job["epochs"]}})
            condgen.training.loop.load_dataset = nan_images if job.get("nan_on_rank") == rank else LOAD_DATASET
            # the data checks would name the NaN images before training: this job is about the loss check
            condgen.runs.build._check_likelihood_fits = (lambda config, splits: None) if job.get("nan_on_rank") == rank \
                else CHECK_LIKELIHOOD
            try:
                run = condgen.train(config, job["out"], resume=job["resume"], progress=False, pictures=False,
                                    log=lambda line: print(f"[{rank}] {line}", flush=True))
            except condgen.CondgenError as exc:
                outcome[job["name"]] = str(exc)
                continue
            outcome[job["name"]] = None
            torch.save(run.model.state_dict(), results / f"{job['name']}-rank{rank}.pt")
    finally:
        (results / f"rank{rank}.json").write_text(json.dumps(outcome))
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
