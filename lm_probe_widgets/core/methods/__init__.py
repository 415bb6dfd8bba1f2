"""Methods built on the engine: what makes a probe result believable, and what to do
with a probe once trained.

- ``baselines``: majority class, random-init model and input-embedding baselines.
- ``confounds``: what the surface of the text alone (length, words) predicts.
- ``control_tasks``: control tasks and selectivity (Hewitt & Liang 2019).
- ``validity``: generalisation across data sets, seed spread, the validity table.
- ``steering``: probe directions exported, and the model pushed along them.
- ``sparse_probe``, ``mlp_probe``, ``attention_probe``: probe families beyond one
  linear read-out (k-sparse; MLP with its control at the same capacity; learned
  pooling over tokens), reading cached features (``family_rows``, ``adamw``).
- ``fit_extras``: control probes and baselines fitted from the probes' own plan.
- ``metrics_table``, ``scoring``, ``runner_methods``: the runner's metrics table, its
  scoring and its validity methods (mixins of ``ProbeRunner``).

Imports: ``methods`` import the engine, the shared vocabulary (``core.config``,
``core.errors``, ``core.labels``) and one another; never ``io/``. ``runner`` imports
them, so they name ``ProbeRunner`` only for type checking.
"""
