"""``zerograd.dataloaders``: DeZero's loader module (re-exports from ``zerograd.data``)."""

import importlib.util

from zerograd import cuda
from zerograd.data.loader import DataLoader, SeqDataLoader

# DeZero's flag: whether Pillow can be imported (found without importing it, which is slow).
pil_available = importlib.util.find_spec("PIL") is not None

__all__ = ["DataLoader", "SeqDataLoader", "cuda", "pil_available"]
