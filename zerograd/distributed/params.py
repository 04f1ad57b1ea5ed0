"""Start every rank from the same weights: ``broadcast_parameters``.

Data-parallel training keeps one model per process and relies on all copies being equal:
equal at the start (this module) and changed by equal updates (``DistributedOptimizer``
averages the gradients). A model that differs between ranks, because a layer size depends
on something rank-specific, would make the buffers of the collectives disagree; MPI cannot
tell, it would mix unrelated numbers or hang. So the structure is compared first, from a
small signature every rank sends to every other, and every rank raises the same error.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from zerograd.backend import as_numpy, get_array_module
from zerograd.core.variable import Parameter, Variable
from zerograd.distributed.comm import DistributedError, _check_root, communicator

if TYPE_CHECKING:
    from zerograd.optim.optimizer import Target

__all__ = ["broadcast_parameters", "check_same_structure", "signature"]

# How many disagreements an error lists before "and N more".
_SHOWN = 5


def _named_arrays(model: Any, buffers: bool, owner: str) -> list[tuple[str, str, object]]:
    """(name, "param" | "buffer", holder) in definition order. The holder is the Parameter
    for a parameter, the array itself (or None) for a buffer. ``model`` is what the user
    passed (a Target, or anything else: refused here with a TypeError)."""
    if isinstance(model, Parameter):
        return [("param", "param", model)]
    if hasattr(model, "named_params"):
        entries = [(name, "param", p) for name, p in model.named_params()]
        if buffers and hasattr(model, "named_buffers"):
            entries += [(name, "buffer", value) for name, value in model.named_buffers()]
        return entries
    try:
        params = list(model)
    except TypeError:
        raise TypeError(f"{owner}: expected a Layer/Model, a Parameter or Parameters, got "
                        f"{type(model).__name__}") from None
    for p in params:
        if not isinstance(p, Parameter):
            raise TypeError(f"{owner}: expected a Layer/Model, a Parameter or Parameters, got "
                            f"an iterable holding {type(p).__name__}")
    return [(f"param {i}", "param", p) for i, p in enumerate(params)]


def _array(holder: object) -> Any:
    return holder.data if isinstance(holder, Variable) else holder


def signature(entries: list[tuple[str, str, object]], with_digest: bool = False) -> list[tuple]:
    """(name, kind, dtype, shape) per entry (dtype and shape None when not initialised),
    plus a digest of the bytes when ``with_digest``: what ranks compare."""
    rows = []
    for name, kind, holder in entries:
        data = _array(holder)
        if data is None:
            rows.append((name, kind, None, None) + ((None,) if with_digest else ()))
            continue
        row: tuple = (name, kind, np.dtype(data.dtype).str, tuple(int(n) for n in data.shape))
        if with_digest:
            host = np.ascontiguousarray(as_numpy(data))
            row += (hashlib.blake2b(host.view(np.uint8).data, digest_size=16).digest(),)
        rows.append(row)
    return rows


def _describe(row: tuple) -> str:
    _, kind, dtype, shape = row[:4]
    if dtype is None:
        return f"an uninitialised {kind}"
    return f"{np.dtype(dtype).name} {shape}"


def check_same_structure(signatures: list[list[tuple]], root: int, owner: str,
                         compare_digests: bool = False, hint: str = "") -> None:
    """Raise DistributedError unless every rank's signature equals ``root``'s (and every
    entry is initialised; with ``compare_digests``, holds the same bytes). Every rank holds
    all signatures, so every rank raises alike instead of one waiting for the others."""
    problems = []
    uninitialised: dict[str, list[int]] = {}
    for r, rows in enumerate(signatures):
        for row in rows:
            if row[2] is None:
                uninitialised.setdefault(row[0], []).append(r)
    if uninitialised:
        items = list(uninitialised.items())
        listed = "; ".join(f"{name!r} on rank(s) {', '.join(map(str, ranks))}"
                           for name, ranks in items[:_SHOWN])
        more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
        raise DistributedError(
            f"{owner}: entries not initialised yet: {listed}{more}. Lazily sized layers get "
            f"their weights at the first call: run one forward pass on every rank (e.g. "
            f"model(x) with a batch of the training data) first")
    reference = {row[0]: row for row in signatures[root]}
    for r, rows in enumerate(signatures):
        if r == root:
            continue
        names = {row[0]: row for row in rows}
        for name, row in names.items():
            ref = reference.get(name)
            if ref is None:
                problems.append(f"{row[1]} {name!r} ({_describe(row)}) exists on rank {r} but "
                                f"not on rank {root}")
            elif row[1:4] != ref[1:4]:
                problems.append(f"{name!r} is {_describe(row)} on rank {r} but "
                                f"{_describe(ref)} on rank {root}")
            elif compare_digests and row[4] != ref[4]:
                problems.append(f"{name!r} holds other values on rank {r} than on rank {root}")
        for name, ref in reference.items():
            if name not in names:
                problems.append(f"{ref[1]} {name!r} ({_describe(ref)}) exists on rank {root} "
                                f"but not on rank {r}")
        if not problems and [row[0] for row in rows] != [row[0] for row in signatures[root]]:
            problems.append(f"rank {r} defines the same entries as rank {root} in another "
                            f"order")
    if problems:
        more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise DistributedError(f"{owner}: the model differs between ranks: "
                               f"{'; '.join(problems[:_SHOWN])}{more}"
                               f"{'. ' + hint if hint else ''}")


def broadcast_parameters(model: Target, root: int = 0, buffers: bool = True) -> None:
    """Copies rank ``root``'s parameters (and buffers, e.g. BatchNorm's running statistics)
    into the model on every rank, in place. A collective: every rank calls it.

    Call it after the model has all its weights: lazily sized layers (``L.Linear(100)``) get
    them at the first call, so run one forward pass first. The ranks first compare the
    model's structure (names, dtypes, shapes) and all raise ``DistributedError`` naming
    the differences if it is not the same everywhere. Then one ``Bcast`` per dtype moves
    all arrays of that dtype, packed into one contiguous buffer.
    """
    owner = "broadcast_parameters"
    group = communicator()
    root = _check_root(root, group.size)
    entries = _named_arrays(model, buffers, owner)
    rows = signature(entries)
    check_same_structure(group.allgather(rows), root, owner,
                         hint="Every rank must build the same model (the same layers, sizes "
                              "and dtypes, in the same order)")
    if group.size == 1:
        return
    # Entries grouped by dtype, in an order every rank computes alike (the signature's).
    by_dtype: dict[str, list] = {}
    for (_, _, holder), row in zip(entries, rows):
        by_dtype.setdefault(row[2], []).append(_array(holder))
    for dtype in sorted(by_dtype):
        arrays = by_dtype[dtype]
        sizes = [int(a.size) for a in arrays]
        buffer = np.empty(sum(sizes), dtype=np.dtype(dtype))
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        if group.rank == root:
            for a, start, stop in zip(arrays, offsets[:-1], offsets[1:]):
                buffer[start:stop] = as_numpy(a).reshape(-1)
        group.Bcast(buffer, root)
        if group.rank != root:
            for a, start, stop in zip(arrays, offsets[:-1], offsets[1:]):
                part = buffer[start:stop].reshape(a.shape)
                xp = get_array_module(a)
                # In place: anything holding the array (an optimizer, a view) sees the copy.
                xp.copyto(a, part if xp is np else xp.asarray(part))

