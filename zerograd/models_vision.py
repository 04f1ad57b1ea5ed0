"""Convolutional models: DeZero's VGG16 and ResNet-50/101/152, and two small ready models.

``VGG16`` and ``ResNet`` use DeZero's attribute names (``conv1_1`` ... ``fc8``; ``conv1``,
``bn1``, ``res2`` ... ``res5`` made of blocks ``a``, ``b1``, ``b2``, ... with ``conv1``/``bn1``
... inside, ``fc6``), so DeZero-format ``.npz`` weight files load by key. Their layers know
their input sizes (except VGG16's ``fc6``, which depends on the image size and is sized at the
first call), so weights are float32 from the start.

``pretrained=True`` looks for the weight file in ``<cache>/models/`` (``$ZEROGRAD_DATA`` or
``~/.zerograd``) and downloads it only if it is missing; without a network it raises
:class:`PretrainedWeightsError` saying where to put the file.

``LeNet`` (28x28 images, e.g. MNIST) and ``SmallResNet`` (32x32 images, e.g. CIFAR-10) are
small models that train in minutes on a CPU.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from zerograd import functions as F
from zerograd.core.variable import Variable
from zerograd.data.download import cache_dir, get_file
from zerograd.errors import ZerogradError
from zerograd.models import Model
from zerograd.nn.batchnorm import BatchNorm
from zerograd.nn.conv import Conv2d
from zerograd.nn.layer import Layer
from zerograd.nn.linear import Linear

__all__ = ["VGG16", "ResNet", "ResNet50", "ResNet101", "ResNet152", "BuildingBlock",
           "BottleneckA", "BottleneckB", "LeNet", "SmallResNet", "BasicBlock", "BasicStage",
           "PretrainedWeightsError", "pretrained_weights_path"]

_RELEASES = "https://github.com/koki0702/dezero-models/releases/download/v0.1/"


class PretrainedWeightsError(ZerogradError, FileNotFoundError):
    """Pretrained weights are neither in the cache directory nor downloadable."""


def pretrained_weights_path(url: str, model: str) -> str:
    """The local path of the weight file at ``url``: ``<cache>/models/<file>``, downloaded
    first if it is not there. Raises PretrainedWeightsError (naming the path to put the file
    at) when the download fails, e.g. on a machine without network access."""
    file_name = url.rsplit("/", 1)[-1]
    directory = os.path.join(cache_dir(), "models")
    path = os.path.join(directory, file_name)
    if os.path.isfile(path):
        return path
    try:
        return get_file(url, file_name, directory=directory)
    except OSError as error:
        raise PretrainedWeightsError(
            f"{model}(pretrained=True): the weights file {file_name} is not in {directory} "
            f"and could not be downloaded from {url} ({error}). Download it where a network "
            f"is available and put it at {path} (set ZEROGRAD_DATA to choose the cache "
            f"directory), or build the model with pretrained=False and call "
            f"model.load_weights(path)."
        ) from error


def _global_average_pooling_2d(x: Variable | np.ndarray) -> Variable:
    """(N, C, H, W) -> (N, C): the mean over each feature map."""
    N, C, H, W = x.shape
    return F.reshape(F.average_pooling(x, (H, W), stride=1), (N, C))


# -- VGG ---------------------------------------------------------------------------------------
class VGG16(Model):
    """VGG-16 (Simonyan & Zisserman, 2014): 13 3x3 convolutions in 5 stages, each followed by
    2x2 max pooling, then fc6 (4096), fc7 (4096) and fc8 (1000) with dropout after fc6/fc7
    in training. x (N, 3, H, W), H and W multiples of 32 -> (N, 1000) scores.

    Trained weights expect :meth:`preprocess`-ed 224x224 images. ``fc6``'s input size
    (512 * H/32 * W/32) is fixed by the first call, or by weights loaded before it (a
    float64 DeZero file still gives float32 weights: loading converts to the layer's dtype).
    """

    WEIGHTS_PATH = _RELEASES + "vgg16.npz"
    _STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__()
        # Find (or fetch) the file before drawing 15M random weights that it would replace.
        weights = pretrained_weights_path(self.WEIGHTS_PATH, "VGG16") if pretrained else None
        self.conv_names = []
        self.pool_after = set()  # the last convolution of each stage
        in_channels = 3
        for stage, (channels, depth) in enumerate(self._STAGES, start=1):
            for i in range(1, depth + 1):
                name = f"conv{stage}_{i}"
                setattr(self, name, Conv2d(channels, 3, 1, 1, in_channels=in_channels))
                self.conv_names.append(name)
                in_channels = channels
            self.pool_after.add(name)
        self.fc6 = Linear(4096)
        self.fc7 = Linear(4096, in_size=4096)
        self.fc8 = Linear(1000, in_size=4096)
        if weights is not None:
            self.load_weights(weights)

    def forward(self, x: Variable | np.ndarray) -> Variable:
        for name in self.conv_names:
            x = F.relu(getattr(self, name)(x))
            if name in self.pool_after:
                x = F.pooling(x, 2, 2)
        x = F.reshape(x, (x.shape[0], -1))
        x = F.relu(self.fc6(x))
        if self.training:
            x = F.dropout(x)
        x = F.relu(self.fc7(x))
        if self.training:
            x = F.dropout(x)
        return self.fc8(x)

    @staticmethod
    def preprocess(image: Any, size: tuple[int, int] | None = (224, 224),
                   dtype: DTypeLike = np.float32) -> np.ndarray:
        """A PIL image (or an RGB uint8 array (H, W, 3)) as VGG's input: RGB, resized to
        ``size`` (width, height; None keeps it), channels reversed to BGR, the ImageNet
        channel means (B 103.939, G 116.779, R 123.68) subtracted, laid out (3, H, W).
        (``image`` is typed Any: PIL, an optional dependency, is imported only here.)"""
        from PIL import Image  # only needed here

        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        image = image.convert("RGB")
        if size:
            image = image.resize(tuple(size))
        array = np.asarray(image, dtype=dtype)[:, :, ::-1]
        array = array - np.array([103.939, 116.779, 123.68], dtype=dtype)
        return np.ascontiguousarray(array.transpose(2, 0, 1))


# -- ResNet ------------------------------------------------------------------------------------
class BottleneckA(Layer):
    """Bottleneck block with a projection shortcut (the first block of a stage):
    y = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x))))))) + bn4(conv4(x))).

    conv1 is 1x1 (in -> mid), conv2 3x3 (mid -> mid), conv3 1x1 (mid -> out), conv4 the 1x1
    projection (in -> out); no biases. ``stride`` sits on conv1 (MSRA's original) or on
    conv2 when ``downsample_fb`` (Facebook's variant). x (N, in, H, W) ->
    (N, out, H / stride, W / stride).
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int,
                 stride: int = 2, downsample_fb: bool = False) -> None:
        super().__init__()
        stride_1x1, stride_3x3 = (1, stride) if downsample_fb else (stride, 1)
        self.conv1 = Conv2d(mid_channels, 1, stride_1x1, 0, nobias=True, in_channels=in_channels)
        self.bn1 = BatchNorm(mid_channels)
        self.conv2 = Conv2d(mid_channels, 3, stride_3x3, 1, nobias=True,
                            in_channels=mid_channels)
        self.bn2 = BatchNorm(mid_channels)
        self.conv3 = Conv2d(out_channels, 1, 1, 0, nobias=True, in_channels=mid_channels)
        self.bn3 = BatchNorm(out_channels)
        self.conv4 = Conv2d(out_channels, 1, stride, 0, nobias=True, in_channels=in_channels)
        self.bn4 = BatchNorm(out_channels)

    def forward(self, x: Variable | np.ndarray) -> Variable:
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return F.relu(h + self.bn4(self.conv4(x)))


class BottleneckB(Layer):
    """Bottleneck block with an identity shortcut: 1x1 (in -> mid), 3x3 (mid -> mid),
    1x1 (mid -> in), each with batch norm, then relu(h + x). x (N, in, H, W) -> same shape."""

    def __init__(self, in_channels: int, mid_channels: int) -> None:
        super().__init__()
        self.conv1 = Conv2d(mid_channels, 1, 1, 0, nobias=True, in_channels=in_channels)
        self.bn1 = BatchNorm(mid_channels)
        self.conv2 = Conv2d(mid_channels, 3, 1, 1, nobias=True, in_channels=mid_channels)
        self.bn2 = BatchNorm(mid_channels)
        self.conv3 = Conv2d(in_channels, 1, 1, 0, nobias=True, in_channels=mid_channels)
        self.bn3 = BatchNorm(in_channels)

    def forward(self, x: Variable | np.ndarray) -> Variable:
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return F.relu(h + x)


class BuildingBlock(Layer):
    """One ResNet stage: ``a`` (a BottleneckA with ``stride``) then ``b1`` ...
    ``b{n_layers-1}`` (BottleneckB). x (N, in, H, W) -> (N, out, H / stride, W / stride)."""

    def __init__(self, n_layers: int, in_channels: int, mid_channels: int, out_channels: int,
                 stride: int, downsample_fb: bool | None = None) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"BuildingBlock: n_layers must be at least 1, got {n_layers}")
        self.a = BottleneckA(in_channels, mid_channels, out_channels, stride,
                             bool(downsample_fb))
        self.block_names = ["a"]
        for i in range(1, n_layers):
            setattr(self, f"b{i}", BottleneckB(out_channels, mid_channels))
            self.block_names.append(f"b{i}")

    def forward(self, x: Variable | np.ndarray) -> Variable:
        h = self.a(x)
        for name in self.block_names[1:]:  # b1, b2, ...
            h = getattr(self, name)(h)
        return h


class ResNet(Model):
    """ResNet (He et al., 2015) with 50, 101 or 152 layers, DeZero's (and Chainer's) layout:
    conv1 7x7/2 (with bias) + bn1 + relu, 3x3/2 max pooling, stages res2 ... res5 of
    bottleneck blocks (256, 512, 1024, 2048 channels), global average pooling and fc6 (1000).
    x (N, 3, H, W) -> (N, 1000) scores; 224x224 images for trained weights.
    """

    WEIGHTS_PATH = _RELEASES + "resnet{}.npz"
    _DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}

    def __init__(self, n_layers: int = 152, pretrained: bool = False) -> None:
        super().__init__()
        if n_layers not in self._DEPTHS:
            raise ValueError(f"ResNet: n_layers must be 50, 101 or 152, got {n_layers!r}")
        self.n_layers = n_layers
        weights = None
        if pretrained:
            weights = pretrained_weights_path(self.WEIGHTS_PATH.format(n_layers),
                                              f"ResNet{n_layers}")
        blocks = self._DEPTHS[n_layers]
        self.conv1 = Conv2d(64, 7, 2, 3, in_channels=3)
        self.bn1 = BatchNorm(64)
        self.res2 = BuildingBlock(blocks[0], 64, 64, 256, 1)
        self.res3 = BuildingBlock(blocks[1], 256, 128, 512, 2)
        self.res4 = BuildingBlock(blocks[2], 512, 256, 1024, 2)
        self.res5 = BuildingBlock(blocks[3], 1024, 512, 2048, 2)
        self.fc6 = Linear(1000, in_size=2048)
        if weights is not None:
            self.load_weights(weights)

    def forward(self, x: Variable | np.ndarray) -> Variable:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.pooling(x, 3, 2)
        x = self.res5(self.res4(self.res3(self.res2(x))))
        return self.fc6(_global_average_pooling_2d(x))


class ResNet50(ResNet):
    """ResNet with 50 layers (stages of 3, 4, 6, 3 bottleneck blocks)."""

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__(50, pretrained)


class ResNet101(ResNet):
    """ResNet with 101 layers (stages of 3, 4, 23, 3 bottleneck blocks)."""

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__(101, pretrained)


class ResNet152(ResNet):
    """ResNet with 152 layers (stages of 3, 8, 36, 3 bottleneck blocks)."""

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__(152, pretrained)


# -- small ready models ------------------------------------------------------------------------
class LeNet(Model):
    """A LeNet-style CNN for 28x28 images (MNIST): x (N, in_channels, 28, 28) -> (N, out_size).

    conv1 5x5 pad 2 (channels[0]) - relu - 2x2 max pool - conv2 5x5 (channels[1]) - relu -
    2x2 max pool - fc1 (hidden_size) - relu - [dropout] - fc2 (out_size). He-normal weights
    (suited to ReLU). ``dropout`` > 0 drops fc1's outputs in training. Other image sizes work
    too (the first call sizes fc1).
    """

    def __init__(self, out_size: int = 10, channels: Sequence[int] = (32, 64),
                 hidden_size: int = 256, in_channels: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"LeNet: dropout must be in [0, 1), got {dropout}")
        self.dropout = float(dropout)
        self.conv1 = Conv2d(channels[0], 5, 1, 2, in_channels=in_channels,
                            initializer="he_normal")
        self.conv2 = Conv2d(channels[1], 5, 1, 0, in_channels=channels[0],
                            initializer="he_normal")
        self.fc1 = Linear(hidden_size, initializer="he_normal")
        self.fc2 = Linear(out_size, in_size=hidden_size)

    def forward(self, x: Variable | np.ndarray) -> Variable:
        x = F.pooling(F.relu(self.conv1(x)), 2, 2)
        x = F.pooling(F.relu(self.conv2(x)), 2, 2)
        x = F.relu(self.fc1(F.reshape(x, (x.shape[0], -1))))
        if self.dropout and self.training:
            x = F.dropout(x, self.dropout)
        return self.fc2(x)


class BasicBlock(Layer):
    """Two 3x3 convolutions with batch norm and a shortcut (He et al., 2015, for CIFAR):
    y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), shortcut = x, or the 1x1
    projection bn3(conv3(x)) when the stride or the channel count changes.
    x (N, in, H, W) -> (N, out, H / stride, W / stride).
    """

    # The projection shortcut, present only when the stride or channel count changes.
    conv3: Conv2d | None
    bn3: BatchNorm | None

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = Conv2d(out_channels, 3, stride, 1, nobias=True, in_channels=in_channels,
                            initializer="he_normal")
        self.bn1 = BatchNorm(out_channels)
        self.conv2 = Conv2d(out_channels, 3, 1, 1, nobias=True, in_channels=out_channels,
                            initializer="he_normal")
        self.bn2 = BatchNorm(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.conv3 = Conv2d(out_channels, 1, stride, 0, nobias=True,
                                in_channels=in_channels, initializer="he_normal")
            self.bn3 = BatchNorm(out_channels)
        else:
            self.conv3 = self.bn3 = None

    def forward(self, x: Variable | np.ndarray) -> Variable:
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        conv3, bn3 = self.conv3, self.bn3  # both set, or both None (see __init__)
        shortcut = x if conv3 is None or bn3 is None else bn3(conv3(x))
        return F.relu(h + shortcut)


class BasicStage(Layer):
    """``n_blocks`` BasicBlocks named ``a`` (with ``stride``, in -> out channels), ``b1``, ...
    x (N, in, H, W) -> (N, out, H / stride, W / stride)."""

    def __init__(self, n_blocks: int, in_channels: int, out_channels: int,
                 stride: int = 1) -> None:
        super().__init__()
        self.a = BasicBlock(in_channels, out_channels, stride)
        self.block_names = ["a"]
        for i in range(1, n_blocks):
            setattr(self, f"b{i}", BasicBlock(out_channels, out_channels))
            self.block_names.append(f"b{i}")

    def forward(self, x: Variable | np.ndarray) -> Variable:
        h = self.a(x)
        for name in self.block_names[1:]:  # b1, b2, ...
            h = getattr(self, name)(h)
        return h


class SmallResNet(Model):
    """A small ResNet for 32x32 images (CIFAR-10 style, 6n+2 layers for n = blocks_per_stage):
    conv1 3x3 (widths[0]) + bn1 + relu, stages res2, res3, res4 of ``blocks_per_stage``
    BasicBlocks (widths[0..2] channels, stride 1, 2, 2; blocks named a, b1, b2, ...), global
    average pooling and fc (out_size). x (N, in_channels, 32, 32) -> (N, out_size).
    """

    def __init__(self, out_size: int = 10, blocks_per_stage: int = 3,
                 widths: Sequence[int] = (16, 32, 64), in_channels: int = 3) -> None:
        super().__init__()
        if blocks_per_stage < 1 or len(widths) != 3:
            raise ValueError(f"SmallResNet: blocks_per_stage must be >= 1 and widths three "
                             f"channel counts, got {blocks_per_stage} and {tuple(widths)}")
        self.conv1 = Conv2d(widths[0], 3, 1, 1, nobias=True, in_channels=in_channels,
                            initializer="he_normal")
        self.bn1 = BatchNorm(widths[0])
        self.stage_names = []
        in_width = widths[0]
        for stage, (width, stride) in enumerate(zip(widths, (1, 2, 2)), start=2):
            setattr(self, f"res{stage}", BasicStage(blocks_per_stage, in_width, width, stride))
            self.stage_names.append(f"res{stage}")
            in_width = width
        self.blocks_per_stage = blocks_per_stage
        self.fc = Linear(out_size, in_size=widths[2])

    def forward(self, x: Variable | np.ndarray) -> Variable:
        x = F.relu(self.bn1(self.conv1(x)))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.fc(_global_average_pooling_2d(x))
