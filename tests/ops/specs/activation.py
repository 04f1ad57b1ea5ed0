import math

import numpy as np

import zerograd.functions as F
from tests.ops.harness import OpSpec
from tests.ops.specs.elementwise import away_from

SHAPES = [((2, 3),), ((),), ((2, 1, 3),)]
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

_erf = np.vectorize(math.erf, otypes=[np.float64])


def ref_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def ref_softplus(x):
    return np.log1p(np.exp(x))


def ref_gelu(x):
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def ref_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def ref_elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * (np.exp(x) - 1))


def ref_selu(x):
    return SELU_SCALE * ref_elu(x, SELU_ALPHA)


def ref_silu(x):
    return x * ref_sigmoid(x)


def ref_mish(x):
    return x * np.tanh(ref_softplus(x))


def ref_hard_sigmoid(x):
    return np.clip(x / 6 + 0.5, 0, 1)


def ref_leaky_relu(x, slope=0.2):
    return np.where(x > 0, x, slope * x)


def ref_softmax(x, axis=1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def ref_log_softmax(x, axis=1):
    return np.log(ref_softmax(x, axis))


def ref_logsumexp(x, axis=1, keepdims=False):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


SOFTMAX_SHAPES = [((2, 3),), ((2, 3, 4),), ((1, 5),)]

SPECS = [
    OpSpec("sigmoid", F.sigmoid, ref_sigmoid, shapes=SHAPES, domain=(-5, 5)),
    OpSpec("sigmoid_simple", F.sigmoid_simple, ref_sigmoid, shapes=SHAPES, domain=(-5, 5)),
    OpSpec("relu", F.relu, lambda x: np.maximum(x, 0), shapes=SHAPES,
           make_inputs=away_from([0.0]), double_backward=True),
    OpSpec("leaky_relu", F.leaky_relu, ref_leaky_relu, shapes=SHAPES,
           make_inputs=away_from([0.0]), double_backward=False),
    OpSpec("leaky_relu_slope", F.leaky_relu, ref_leaky_relu, kwargs={"slope": 0.01},
           make_inputs=away_from([0.0]), double_backward=False, covers=[]),
    OpSpec("leaky_relu_steep", F.leaky_relu, ref_leaky_relu, kwargs={"slope": 1.5},
           make_inputs=away_from([0.0]), double_backward=False, covers=[]),
    OpSpec("softplus", F.softplus, ref_softplus, shapes=SHAPES, domain=(-5, 5)),
    OpSpec("gelu", F.gelu, ref_gelu, shapes=SHAPES, domain=(-4, 4)),
    OpSpec("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), ref_gelu_tanh, shapes=SHAPES,
           domain=(-4, 4), covers=[]),
    OpSpec("elu", F.elu, ref_elu, shapes=SHAPES, make_inputs=away_from([0.0])),
    OpSpec("elu_alpha", F.elu, ref_elu, kwargs={"alpha": 0.5}, make_inputs=away_from([0.0]),
           covers=[]),
    OpSpec("selu", F.selu, ref_selu, shapes=SHAPES, make_inputs=away_from([0.0])),
    OpSpec("silu", F.silu, ref_silu, shapes=SHAPES, domain=(-5, 5), covers=["silu", "swish"]),
    OpSpec("mish", F.mish, ref_mish, shapes=SHAPES, domain=(-5, 5)),
    OpSpec("hard_sigmoid", F.hard_sigmoid, ref_hard_sigmoid, shapes=SHAPES,
           make_inputs=away_from([-3.0, 3.0], low=-5, high=5), double_backward=False),
    OpSpec("softmax", F.softmax, ref_softmax, shapes=SOFTMAX_SHAPES, zero_d=False),
    OpSpec("softmax_last_axis", F.softmax, ref_softmax, kwargs={"axis": -1},
           shapes=[((2, 3, 4),), ((5,),)], covers=[]),
    OpSpec("softmax_two_axes", F.softmax, ref_softmax, kwargs={"axis": (1, 2)},
           shapes=[((2, 3, 2),)], covers=[], zero_d=False),
    OpSpec("softmax_simple", F.softmax_simple, ref_softmax, shapes=SOFTMAX_SHAPES, zero_d=False),
    OpSpec("log_softmax", F.log_softmax, ref_log_softmax, shapes=SOFTMAX_SHAPES, zero_d=False),
    OpSpec("log_softmax_axis0", F.log_softmax, ref_log_softmax, kwargs={"axis": 0},
           shapes=[((3, 2),), ((4,),)], covers=[]),
    OpSpec("logsumexp", F.logsumexp, ref_logsumexp, shapes=SOFTMAX_SHAPES, zero_d=False),
    OpSpec("logsumexp_keepdims", F.logsumexp, ref_logsumexp,
           kwargs={"axis": -1, "keepdims": True}, shapes=[((2, 3, 4),)], covers=[]),
    OpSpec("logsumexp_all", F.logsumexp, ref_logsumexp, kwargs={"axis": None},
           shapes=[((2, 3),), ((4,),)], covers=[]),
    OpSpec("logsumexp_axes", F.logsumexp, ref_logsumexp, kwargs={"axis": (0, 2)},
           shapes=[((2, 3, 2),)], covers=[], zero_d=False),
]
