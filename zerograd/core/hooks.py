"""Hooks: functions called back with a gradient (``Variable.register_hook``) or around a
layer's forward (``Layer.register_forward_hook``), removed through the handle they return.

Gradient hooks are kept here, in a table keyed by the Variable's ``id`` (an entry goes when
its Variable is garbage-collected), instead of in a slot of every Variable: an op's output
then costs nothing extra to create, and the engine tests one dict for emptiness per backward
call to know that no hook exists anywhere.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable

from zerograd.core.variable import Variable, is_array
from zerograd.errors import ShapeError

_handle_ids = itertools.count()


class RemovableHandle:
    """What ``register_*hook`` returns: ``handle.remove()`` unregisters the hook (a second
    call does nothing). Also a context manager: the hook is removed when the block ends."""

    def __init__(self, hooks: HookDict) -> None:
        # A weak reference: a handle kept by the user does not keep a dead Variable's (or
        # Layer's) hooks alive.
        self._hooks_ref = weakref.ref(hooks)
        self.id = next(_handle_ids)

    def remove(self) -> None:
        hooks = self._hooks_ref()
        if hooks is not None:
            hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()


class HookDict(dict):
    """{handle id: hook} in registration order; a dict that can be weakly referenced."""


# id(variable) -> its hooks. The engine reads it.
gradient_hooks: dict[int, HookDict] = {}


def register_gradient_hook(variable: Variable, hook: Callable) -> RemovableHandle:
    if not callable(hook):
        raise TypeError(f"register_hook: hook must be callable, got {type(hook).__name__}")
    if not variable.requires_grad:
        raise ValueError(
            "register_hook: this Variable does not require a gradient (a constant, or a "
            "result computed under no_grad()), so no gradient will ever reach the hook"
        )
    key = id(variable)
    hooks = gradient_hooks.get(key)
    if hooks is None:
        hooks = gradient_hooks[key] = HookDict()
        # The id is reused once the Variable is gone: drop its hooks with it.
        weakref.finalize(variable, gradient_hooks.pop, key, None)
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    return handle


def run_gradient_hooks(hooks: dict, variable: Variable, grad: Variable) -> Variable:
    """``grad`` passed through ``variable``'s hooks in order; each may return a replacement."""
    for hook in list(hooks.values()):
        result = hook(grad)
        if result is None:
            continue
        if is_array(result):
            result = Variable(result, requires_grad=False)
        elif not isinstance(result, Variable):
            raise TypeError(
                f"gradient hook {_name(hook)} returned a {type(result).__name__}; return None "
                f"(keep the gradient), a Variable or an ndarray"
            )
        if result.shape != grad.shape:
            raise ShapeError(
                f"gradient hook {_name(hook)} returned shape {tuple(result.shape)} for a "
                f"gradient of shape {tuple(grad.shape)} (the Variable's shape); a hook may "
                f"change the values of a gradient, not its shape"
            )
        grad = result
    return grad


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__
