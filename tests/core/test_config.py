"""Config flags: DeZero's spelling, context managers, thread-locality."""

import threading

import numpy as np
import pytest

from zerograd import Config, Variable, no_grad, test_mode, using_config


def test_defaults_and_dezero_spelling():
    assert Config.enable_backprop is True and Config.train is True
    Config.enable_backprop = False
    try:
        assert Config.enable_backprop is False
        y = Variable(np.array(1.0)) * 2.0
        assert y.creator is None
    finally:
        Config.enable_backprop = True


def test_context_managers_restore_even_on_error():
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            assert Config.enable_backprop is False
            raise ZeroDivisionError
    assert Config.enable_backprop is True
    with test_mode():
        assert Config.train is False
    assert Config.train is True
    with using_config("train", False), using_config("enable_backprop", False):
        assert (Config.train, Config.enable_backprop) == (False, False)
    assert (Config.train, Config.enable_backprop) == (True, True)


def test_unknown_flag_is_an_error():
    with pytest.raises(AttributeError, match="no flag"):
        Config.enable_backprob = False
    with pytest.raises(AttributeError, match="no flag"):
        _ = Config.trian


def test_flags_are_thread_local():
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def worker():
        with no_grad():
            inside.set()
            release.wait(5)
            seen["worker"] = Config.enable_backprop

    t = threading.Thread(target=worker)
    t.start()
    inside.wait(5)
    seen["main"] = Config.enable_backprop  # the worker's no_grad must not leak here
    y = Variable(np.array(1.0)) * 2.0
    release.set()
    t.join()
    assert seen == {"main": True, "worker": False}
    assert y.creator is not None


def test_new_threads_start_from_defaults():
    result = {}
    with no_grad():
        t = threading.Thread(target=lambda: result.setdefault("flag", Config.enable_backprop))
        t.start()
        t.join()
    assert result["flag"] is True
