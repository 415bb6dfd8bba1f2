"""The probing core: data, tracing, pooling, probes, runner. Never imports notebook code."""
