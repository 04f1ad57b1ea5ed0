"""``zerograd.datasets``: DeZero's dataset module (re-exports from ``zerograd.data``)."""

from zerograd.data.dataset import ArrayDataset, Dataset, Subset, TensorDataset
from zerograd.data.digits import Digits
from zerograd.data.mnist import MNIST, IDXFormatError, read_idx
from zerograd.data.sincurve import SinCurve
from zerograd.data.spiral import Spiral, get_spiral

__all__ = [
    "ArrayDataset", "Dataset", "Digits", "IDXFormatError", "MNIST", "SinCurve", "Spiral",
    "Subset", "TensorDataset", "get_spiral", "read_idx",
]
