"""Shortened runs of the recurrent examples, with the thresholds they must reach.

examples/sin_rnn.py (the book's steps 59 and 60): an untrained model predicts the next value
of the clean cosine with a mean squared error of about 0.5. The RNN draws its recurrent weight
at its second call, as DeZero does, which makes its first epochs noisy: 0.024 after 3 epochs,
0.0039 after 4; after 20 epochs the LSTM reaches about 0.005 (seed 0). Asserted: below 0.02,
a 4-5x margin.

examples/char_lstm.py: the loss starts at about ln(26) = 3.26 nats per character; after 40
iterations the LSTM reaches about 1.45 and the Transformer (smaller windows) about 2.1.
Asserted: the LSTM's loss at least halves, the Transformer's falls by at least a quarter.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

import char_lstm  # noqa: E402
import sin_rnn  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("kind, epochs", [("rnn", 4), ("lstm", 20)])
def test_sin_curve_prediction_error_falls_below_threshold(kind, epochs):
    result = sin_rnn.train(kind, epochs, verbose=False)
    assert result["initial_mse"] > 0.3
    assert result["test_mse"] < 0.02, result["test_mse"]
    assert result["history"][-1] < result["history"][0] / 5
    params = list(result["model"].params())
    assert all(p.data.dtype == np.float32 for p in params)


@pytest.mark.slow
def test_char_lstm_loss_halves():
    result = char_lstm.train("lstm", 40, verbose=False)
    start, end = np.mean(result["losses"][:3]), np.mean(result["losses"][-5:])
    assert start > 3.0
    assert end < start / 2, (start, end)


@pytest.mark.slow
def test_char_transformer_loss_falls():
    result = char_lstm.train("transformer", 40, batch=16, context=32, verbose=False)
    start, end = np.mean(result["losses"][:3]), np.mean(result["losses"][-5:])
    assert end < 0.75 * start, (start, end)
    text = char_lstm.sample(result["model"], result["ids"], result["chars"], 20,
                            result["context"])
    assert len(text) == 20 and set(text) <= set(result["chars"])


def test_generated_text_is_deterministic_and_small():
    a, b = char_lstm.make_text(seed=3), char_lstm.make_text(seed=3)
    assert a == b and 20_000 < len(a) < 100_000
    assert len(set(a)) < 30
