"""Training and evaluation: the loop, the optimizer, training across processes, and test figures.

- ``loop``: :func:`~condgen.train`, epochs, metrics, checkpoints and resume;
- ``optimizer``: Adam/AdamW and a lean step; ``distributed``: torchrun's processes as one training;
- ``evaluation``: the test split's terms, -ELBO and the importance-sampled NLL (:func:`~condgen.evaluate`).

It draws no pictures and knows no command line: those are the caller's.
"""
