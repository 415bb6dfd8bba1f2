"""Probe families beyond one linear read-out of one pooled vector, all reading the
runner's cached features (no forward pass) and reporting paired comparisons:

- ``sparse``: k-sparse probes (Gurnee et al. 2023): accuracy against k, and which
  dimensions carry it, against random dimensions of the same k.
- ``mlp``: one-hidden-layer probes with a capacity knob, scored with their control
  task at the same capacity (Hewitt & Liang 2019).
- ``attention``: learned pooling over tokens (a query per head and a position bias),
  then a linear read-out, trained with torch on token-level features.

Imports: the engine, ``core.methods.compare`` and the shared vocabulary; never
notebook code.
"""
