"""Ops that draw random numbers: dropout."""

from __future__ import annotations

__all__: list[str] = []
