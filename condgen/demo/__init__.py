"""``condgen demo RUN_DIR``: a local web page (Gradio) that draws samples of a trained run.

- :mod:`.widgets`: each conditioner's input, the one its plugins register (:class:`condgen.Widget`), or a
  text box taking its ``--condition`` form;
- :mod:`.drawing`: from the inputs' values to a grid of samples, with no web toolkit in it (tested alone);
- :mod:`.page`: the page itself and its server, the one module that imports Gradio (the optional extra
  ``condgen[demo]``).
"""

#: Where ``condgen demo`` serves, unless ``--host`` and ``--port`` say otherwise: this machine only, on Gradio's
#: usual port. Here, in a module that imports nothing, so the command line's flags declare them without Gradio.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
