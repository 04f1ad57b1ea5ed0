"""Spec tables, one module per op family, each defining ``SPECS`` (and optionally
``NOT_DIFFERENTIABLE``: public names of the family that need no gradient checks)."""
