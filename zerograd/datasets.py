"""``zerograd.datasets``: DeZero's dataset module (re-exports from ``zerograd.data``)."""

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
from zerograd.data.imagenet import ImageNet
from zerograd.data.mnist import MNIST, IDXFormatError, read_idx
from zerograd.data.shakespeare import Shakespear, Shakespeare
from zerograd.data.sincurve import SinCurve
from zerograd.data.spiral import Spiral, get_spiral
from zerograd.data.transforms import Compose, Flatten, Normalize, ToFloat
from zerograd.utils import cache_dir, get_file

__all__ = [
    "ArrayDataset", "CIFAR10", "CIFAR100", "DataFormatError", "Dataset", "DatasetIndexError",
    "Digits",
    "IDXFormatError", "ImageNet", "MNIST", "Shakespear", "Shakespeare", "SinCurve", "Spiral",
    "Subset", "TensorDataset", "get_spiral", "load_cache_npz", "read_idx", "save_cache_npz",
    # DeZero's datasets module has these too (it imports them for its own use):
    "Compose", "Flatten", "Normalize", "ToFloat", "cache_dir", "get_file",
]
