"""Losses and metrics: mean squared error, cross-entropies, accuracy."""

from __future__ import annotations

__all__: list[str] = []
