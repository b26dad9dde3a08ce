"""The toolkit's own plugins, registered through the same hooks and the same path as a third party's.

- ``datasets``: the ``mnist`` and ``npz`` data sets.

The registry loads them by name (:data:`condgen.plugin.registry.DEFAULT_PLUGINS`); nothing imports them.
"""
