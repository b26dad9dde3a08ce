#!/usr/bin/env bash
# Train the seed label-conditioned CVAE on MNIST with the CLI, then draw samples.
#
#   examples/mnist_label/run.sh DATA_DIR [RUN_DIR]
#
# DATA_DIR holds the four MNIST .gz IDX files. RUN_DIR (default ~/.cache/condgen/runs/mnist-label-seed)
# must not hold a run yet. About 2.5 minutes on two CPU cores. Afterwards RUN_DIR holds
# config.json, checkpoint.safetensors, metrics.jsonl, samples.png, reconstructions.png,
# latent.png and samples.npy (10 samples of each digit, shape (100, 1, 28, 28), row k = label k).
set -euo pipefail
DATA_DIR=${1:?usage: run.sh DATA_DIR [RUN_DIR]}
RUN_DIR=${2:-${XDG_CACHE_HOME:-$HOME/.cache}/condgen/runs/mnist-label-seed}

condgen train --conditioner label --latent-dim 2 --hidden 512 --batch-size 50 --epochs 20 --seed 0 \
    --data-dir "$DATA_DIR" --out "$RUN_DIR"
# The recommended configuration instead (about 2.5 minutes, 92.3 nats instead of 131.1):
#   condgen train --config examples/mnist_label/recommended.json --data-dir "$DATA_DIR" --out RUN_DIR

condgen sample "$RUN_DIR" --condition label=all --num 10 --seed 0 --out "$RUN_DIR/samples.npy"
tail -n 1 "$RUN_DIR/metrics.jsonl"
