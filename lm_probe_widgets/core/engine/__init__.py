"""The machinery of a fit: from token ids to trained, scored probes.

- Data and reading the model: ``data`` (ProbeDataset, batches), ``modeling`` (wrapping
  models for nnsight), ``submodules`` (validating and ordering the sites read),
  ``extract`` (one trace per batch), ``remote`` (the same traces on NDIF), ``pooling``.
- Features: ``feature_cache`` (the in-memory pooled-feature cache, on the host or the
  probe device), ``rows`` (rows moved where the probe maths reads them), ``disk_store`` (the
  persistent store on disk, and the user cache folder), ``feature_access`` (how a runner
  reads features from either, or runs the model), ``fingerprint`` (which model made them),
  ``memory`` (what a fit will need, checked before it starts).
- Probes and fitting: ``probe`` (logistic), ``regression`` (ridge), ``families``,
  ``family_models`` and ``sparse_model`` (MLP, attention and k-sparse probes),
  ``final_fit`` and ``lbfgs`` (the converged full-batch fit), ``l2_search`` (the L2
  strengths it compares, past the grid's edge) and ``l2_note`` (what to say about the
  choice), ``settings`` (a fit's settings, checked once), ``plan`` (everything a fit
  needs, checked first), ``fit`` (the resumable fit loop), ``stop`` (how a Stop or
  Ctrl-C reaches it), ``session`` (what surrounds a fit), ``states`` (every state
  name), ``events`` (what the loop reports, typed), ``reducer`` (events to fit, phase
  and probe state, for every display) and ``progress`` (the console meter, ``track``).
- Scoring: ``metrics``, ``uncertainty`` (bootstrap intervals), ``evaluation``.

Imports: the engine imports only itself and the shared vocabulary (``core.config``,
``core.errors``, ``core.labels``); never ``methods/``, ``io/`` or ``runner``: the fit
loop gets a feature reader, the cache, the event bus and a stop flag, not the runner.
``probe`` imports ``display/`` inside its HTML repr methods, never at import time.
"""
