"""``zerograd.data``: datasets, transforms, loaders and safe downloads.

DeZero's module names re-export from here: ``zerograd.datasets``, ``zerograd.dataloaders``,
``zerograd.transforms``. Pillow, scikit-learn and matplotlib are imported only by the parts
that need them.
"""

from zerograd.data import transforms
from zerograd.data.cache import load_cache_npz, save_cache_npz
from zerograd.data.cifar import CIFAR10, CIFAR100
from zerograd.data.dataset import (
    ArrayDataset,
    DataFormatError,
    Dataset,
    DatasetIndexError,
    Subset,
    TensorDataset,
)
from zerograd.data.digits import Digits
from zerograd.data.download import DownloadError, cache_dir, get_file
from zerograd.data.imagenet import ImageNet
from zerograd.data.loader import DataLoader, SeqDataLoader
from zerograd.data.mnist import MNIST, IDXFormatError, read_idx
from zerograd.data.shakespeare import Shakespear, Shakespeare
from zerograd.data.sincurve import SinCurve
from zerograd.data.spiral import Spiral, get_spiral

__all__ = [
    "ArrayDataset", "CIFAR10", "CIFAR100", "DataFormatError", "DataLoader", "Dataset",
    "DatasetIndexError", "Digits",
    "DownloadError", "IDXFormatError", "ImageNet", "MNIST", "SeqDataLoader", "Shakespear",
    "Shakespeare", "SinCurve", "Spiral", "Subset", "TensorDataset", "cache_dir", "get_file",
    "get_spiral", "load_cache_npz", "read_idx", "save_cache_npz", "transforms",
]
