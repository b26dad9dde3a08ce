"""Training and evaluation: the loop, the optimizer, training across processes, and test figures.

- ``loop``: the training loop (epochs, metrics, checkpoints, resume), which :func:`condgen.train` calls;
- ``optimizer``: Adam/AdamW and a lean step; ``distributed``: torchrun's processes as one training;
- ``evaluation``: the test split's terms, -ELBO and the importance-sampled NLL (:func:`~condgen.evaluate`).

It draws no pictures and knows no command line: those are the caller's.
"""
