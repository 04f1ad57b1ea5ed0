"""Convolution: im2col/col2im, conv1d, conv2d, deconv2d."""

from __future__ import annotations

__all__: list[str] = []
