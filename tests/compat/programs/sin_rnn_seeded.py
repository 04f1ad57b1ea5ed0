# Book steps 59 (SimpleRNN, one sample a step) and 60 (BetterRNN: LSTM on SeqDataLoader
# batches of 30): seeded training on SinCurve, truncated BPTT every 30 steps, Adam, and the
# book's loss line for every epoch. tests/test_book_parity.py checks these lines against
# DeZero's to the printed digits.
import numpy as np

import dezero
import dezero.functions as F
import dezero.layers as L
from dezero import Model


class SinRNN(Model):
    """The book's SimpleRNN (cell L.RNN) and BetterRNN (cell L.LSTM): one recurrent layer
    read out by a Linear."""

    def __init__(self, cell, hidden_size, out_size):
        super().__init__()
        self.rnn = cell(hidden_size)
        self.fc = L.Linear(out_size)

    def reset_state(self):
        self.rnn.reset_state()

    def forward(self, x):
        return self.fc(self.rnn(x))


def train(model, batches, epochs, seqlen, bptt_length=30):
    optimizer = dezero.optimizers.Adam().setup(model)
    for epoch in range(epochs):
        model.reset_state()
        loss, count = 0, 0
        for x, t in batches:
            loss += F.mean_squared_error(model(x), t)
            count += 1
            if count % bptt_length == 0 or count == seqlen:
                model.cleargrads()
                loss.backward()
                loss.unchain_backward()
                optimizer.update()
        print("| epoch %d | loss %f" % (epoch + 1, float(loss.data) / count))


# Each step seeded as if run alone: SinCurve's noise and the lazy weights draw from NumPy.
print("step 59")
np.random.seed(0)
train_set = dezero.datasets.SinCurve(train=True)
samples = [(x.reshape(1, 1), t) for x, t in train_set]
train(SinRNN(L.RNN, 100, 1), samples, epochs=3, seqlen=len(train_set))

print("step 60")
np.random.seed(0)
train_set = dezero.datasets.SinCurve(train=True)
loader = dezero.SeqDataLoader(train_set, batch_size=30)
train(SinRNN(L.LSTM, 100, 1), loader, epochs=4, seqlen=len(train_set))
