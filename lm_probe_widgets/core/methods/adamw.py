"""AdamW written out (`core.engine.family_models.AdamW`), kept under its old name."""

from ..engine.family_models import AdamW

__all__ = ["AdamW"]
