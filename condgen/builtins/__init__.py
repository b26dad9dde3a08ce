"""The toolkit's own plugins, registered through the same hooks and the same path as a third party's.

- ``datasets``: the ``mnist``, ``npz``, ``fashion-mnist`` and ``image-folder`` data sets;
- ``architectures``: the ``mlp`` and ``conv`` architectures (``model.arch``);
- ``likelihoods``: ``bernoulli``, ``gaussian``, ``gaussian-pixel``, ``gaussian-shared``, ``logistic`` and
  ``logistic-mixture`` (``model.likelihood``);
- ``callbacks``: ``pictures`` (``pictures.py``) and ``tensorboard`` (``tensorboard.py``), the training callbacks
  (``train.log``).

The registry loads them by name (:data:`condgen.plugin.registry.DEFAULT_PLUGINS`); nothing imports them.
"""
