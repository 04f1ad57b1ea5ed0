"""Every optimizer's update is an in-place write the engine sees: a backward through a graph
built before the update raises instead of using the updated weights."""

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.layers as L
from zerograd import optimizers
from zerograd.errors import InPlaceError

OPTIMIZERS = {
    "SGD": lambda: optimizers.SGD(0.1),
    "MomentumSGD": lambda: optimizers.MomentumSGD(0.1),
    "Nesterov": lambda: optimizers.MomentumSGD(0.1, nesterov=True),
    "AdaGrad": lambda: optimizers.AdaGrad(),
    "AdaDelta": lambda: optimizers.AdaDelta(),
    "RMSprop": lambda: optimizers.RMSprop(),
    "Adam": lambda: optimizers.Adam(),
    "AdamW": lambda: optimizers.AdamW(),
}


@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_backward_after_an_update_of_a_used_weight_raises(make):
    layer = L.Linear(2, in_size=3)
    optimizer = make().setup(layer)
    loss = F.sum(layer(np.ones((1, 3), np.float32)) ** 2)
    loss.backward()
    optimizer.update()  # W and b change in place; the graph of `loss` still holds the old ones
    layer.cleargrads()
    with pytest.raises(InPlaceError, match="Linear"):
        loss.backward()
