"""Activations: sigmoid, relu and friends, softmax, log_softmax."""

from __future__ import annotations

__all__: list[str] = []
