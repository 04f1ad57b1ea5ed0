"""``zerograd.dataloaders``: DeZero's loader module (re-exports from ``zerograd.data``)."""

from zerograd.data.loader import DataLoader, SeqDataLoader

__all__ = ["DataLoader", "SeqDataLoader"]
