"""The probing core: everything that trains and scores probes. Never imports notebook code.

Layout, and what may import what (tests/test_layout.py checks it):

- ``config.py``, ``errors.py``, ``labels.py``: the shared vocabulary (ProbeConfig, the
  error types, class values and their order). They import only one another.
- ``engine/``: the machinery of a fit: data, tracing, pooling, feature caches, probes,
  the fit loop, metrics. Imports the vocabulary and itself, nothing else in core.
- ``methods/``: methods built on the engine: baselines, confounds, control tasks,
  validity checks, steering. Import the engine, the vocabulary and one another.
- ``io/``: models and runners in and out: loading models and data sets, tiny test
  models, saving and loading runners. Import the engine and the vocabulary.
- ``runner.py``: ``ProbeRunner``, the facade over all of the above (its fit driver;
  scoring, the validity methods and the views are mixins from ``methods/`` and
  ``io/``); it may import anything in core.

No module in core imports ``runner`` when it runs, at import time or inside a function
(``methods`` name it for type checking only): core has no import circle. None imports
``display/`` or ``widgets/`` at import time: the HTML reprs and plot methods import
``display/`` inside the method that needs it.
"""
