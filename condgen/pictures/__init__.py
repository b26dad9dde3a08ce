"""Pictures and files of samples: one module each for the labelled grid (:mod:`condgen.pictures.grid`),
the rows of samples a picture or file holds (:mod:`condgen.pictures.rows`), writing samples to the
file a command's ``--out`` names (:mod:`condgen.pictures.samples`), and a run's own pictures
(:mod:`condgen.pictures.drawing`: samples, reconstructions and the latent space).

Drawn by the callers of the training loop (``condgen.train``, the command line), never by the loop itself.
Importing this package imports nothing: ``condgen --help`` reaches :mod:`condgen.pictures.samples`
for the commands' flags without torch.
"""
