"""Runs: a model with its conditioners and config, how it is built, stored, loaded and used.

- ``config``: the validated run config; ``build``: the conditioners and the CVAE from it;
- ``run``: :class:`~condgen.Run` (score, estimate, sample); ``conditions``: user values into conditions;
- ``datasets``: the run's data set, loaded by name through the registry;
- ``checkpoint``: the safetensors file format; ``store``: what a run's checkpoint holds, saving and loading;
- ``rundir``: which directories a run may be written into, one writer at a time.
"""
