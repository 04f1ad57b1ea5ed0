"""ImageNet's class names (DeZero keeps only these; there is no ImageNet data here)."""

from __future__ import annotations

import ast

from zerograd.data.dataset import DataFormatError
from zerograd.data.download import get_file


class ImageNet:
    """Only ``ImageNet.labels()``: the 1,000 class names, id -> name (used with VGG16)."""

    url = ("https://gist.githubusercontent.com/yrevar/942d3a0ac09ec9e5eb3a/raw/"
           "238f720ff059c1f82f368259d1ca4ffa5dd8f9f5/imagenet1000_clsidx_to_labels.txt")

    def __init__(self):
        raise NotImplementedError("ImageNet holds no data in zerograd (nor in DeZero); use "
                                  "ImageNet.labels() for the class names")

    @staticmethod
    def labels() -> dict[int, str]:
        """Downloads (once) the id -> name table and parses it as a literal, never ``eval``."""
        path = get_file(ImageNet.url)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            table = ast.literal_eval(text)
        except (ValueError, SyntaxError) as error:
            raise DataFormatError(f"{path}: not a literal dict of class names ({error}); "
                                  f"delete it to download it again") from error
        if not isinstance(table, dict):
            raise DataFormatError(f"{path}: expected a dict of class names, got "
                                  f"{type(table).__name__}")
        return table


__all__ = ["ImageNet"]
