"""The plugin boundary: what a plugin implements and how the toolkit finds it.

- ``hookspecs``: the hooks a plugin may implement (also at ``condgen.hookspecs``);
- ``conditioner``: the :class:`~condgen.Conditioner` contract; ``command``: :class:`~condgen.Command`;
- ``registry``: finding plugins through their entry points, isolating broken ones, and what they register.

It imports the shared pieces (:mod:`condgen.common`) and data types (:mod:`condgen.data`), never runs,
training, pictures or the command line.
"""
