"""Models, data sets and runners in and out of the process.

- ``loading``: the offline default model and data set, your own from a folder or the
  hub, and models NDIF hosts (``remote_model``).
- ``tiny``: tiny randomly initialised models with an in-process tokenizer (tests, demos).
- ``persistence``: saving and loading runners as safetensors plus JSON (no pickle).
- ``views``: a runner's reprs and plots (``display/`` imported inside each method).

Imports: ``io`` imports the engine and the shared vocabulary (``core.config``,
``core.errors``, ``core.labels``); never ``methods/`` or ``runner`` (``persistence``
takes the runner as an argument).
"""
