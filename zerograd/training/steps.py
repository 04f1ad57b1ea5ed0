"""Ready-made training steps for ``fit(train_step=...)``: truncated BPTT for recurrent models.

A training step is ``step(trainer, batch) -> dict`` (see ``Trainer.train_step``). One with
state across batches may define ``state_dict()``/``load_state_dict()`` (saved in the run's
checkpoint) and ``ready`` (False while a checkpoint in the middle of an epoch would cut its
state in two: the loop then waits for the next batch where it is True).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from zerograd.backend import as_numpy
from zerograd.core.variable import Variable
from zerograd.nn.layer import Layer

if TYPE_CHECKING:  # the trainer imports this module's users
    from zerograd.training.trainer import Trainer


def _recurrent_cells(model: Layer) -> Iterator[tuple[str, Any]]:
    """(path, layer) of every layer carrying a recurrent state between calls (``h``, and
    ``c`` for an LSTM), as ``RNN``/``LSTM``/``GRU`` cells keep it until ``reset_state()``."""
    for path, layer in model.named_layers():
        if hasattr(layer, "set_state") and "h" in layer.__dict__:
            yield path, layer


def recurrent_state(model: Layer) -> dict[str, dict[str, np.ndarray | None]]:
    """``{path: {"h": array, "c": array}}`` of the model's recurrent cells (None: no state)."""
    state = {}
    for path, layer in _recurrent_cells(model):
        entry: dict[str, np.ndarray | None] = {}
        for name in ("h", "c"):
            if name in layer.__dict__:
                value = layer.__dict__[name]
                entry[name] = None if value is None else np.array(as_numpy(value.data))
        state[path or "."] = entry
    return state


def set_recurrent_state(model: Layer, state: dict[str, dict[str, Any]]) -> None:
    for path, layer in _recurrent_cells(model):
        entry = state[path or "."]
        layer.set_state(*[entry[name] for name in ("h", "c") if name in entry])


class TruncatedBPTT:
    """The book's loop for recurrent models over a ``SeqDataLoader``: the loss of
    ``bptt_length`` consecutive batches is summed, then back-propagated, the graph is cut
    (``unchain_backward``) and the optimizer steps; the state (``h``, ``c``) carries on into
    the next window. Each epoch starts from a fresh state (``model.reset_state()``).

    A checkpoint in the middle of an epoch is taken only between windows, with the
    recurrent state, so a resumed run continues exactly.
    """

    def __init__(self, bptt_length: int) -> None:
        if not isinstance(bptt_length, int) or bptt_length < 1:
            raise ValueError(f"TruncatedBPTT: bptt_length must be an int >= 1, got "
                             f"{bptt_length!r}")
        self.bptt_length = bptt_length
        self.loss: Variable | int = 0  # the window's summed loss (0: an empty window)
        self.count = 0
        self._model: Layer | None = None  # the trainer's model, seen at the last call
        # A restored recurrent state, set before the next batch.
        self._pending: dict[str, dict[str, Any]] | None = None

    @property
    def ready(self) -> bool:
        return self.count == 0

    def __call__(self, trainer: Trainer, batch: Any) -> dict[str, Any]:
        model = self._model = trainer.model
        if trainer.step == 0:
            reset_state = getattr(model, "reset_state", None)
            if reset_state is None:
                raise TypeError(f"TruncatedBPTT: the model ({type(model).__name__}) has no "
                                f"reset_state(); a recurrent model defines it (resetting its "
                                f"RNN/LSTM/GRU layers) so that each epoch starts afresh")
            reset_state()
            self.loss, self.count, self._pending = 0, 0, None
        elif self._pending is not None:  # the first batch after a resume mid-epoch
            set_recurrent_state(model, self._pending)
            self._pending = None
        x, t = batch
        y = model(x)
        loss: Variable = trainer.loss_fn(y, t)
        self.loss = total = self.loss + loss
        self.count += 1
        last = trainer.batches_per_epoch is not None and \
            trainer.step + 1 >= trainer.batches_per_epoch
        if self.count == self.bptt_length or last:
            trainer.backward(total)
            total.unchain_backward()
            trainer.update()
            self.loss, self.count = 0, 0
        return {"loss": loss, "y": y, "t": t, "n": len(x)}

    def state_dict(self) -> dict[str, Any]:
        # Taken between windows only (see ``ready``): the summed loss is empty then.
        model = self._model
        return {"recurrent": {} if model is None else recurrent_state(model)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending = state["recurrent"] or None


__all__ = ["TruncatedBPTT", "recurrent_state", "set_recurrent_state"]
