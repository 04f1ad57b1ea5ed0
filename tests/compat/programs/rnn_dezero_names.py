# DeZero's RNN and LSTM sub-layers (x2h/h2h; x2f ... h2u): set by hand, transplanted, saved and
# loaded by their names, the model computes with exactly those weights.
import numpy as np

import dezero.layers as L
from dezero import Model


def fill(layer, scale):
    W = layer.W.data
    layer.W.data = (np.arange(W.size, dtype=np.float32).reshape(W.shape) % 7 - 3) * scale
    if layer.b is not None:
        layer.b.data = np.full(layer.b.data.shape, scale, np.float32)


xs = [np.array([[0.5, -1.0]], np.float32) * (t + 1) for t in range(3)]

rnn = L.RNN(3, in_size=2)
fill(rnn.x2h, 0.1)
rnn.h2h = L.Linear(3, in_size=3, nobias=True)  # transplanted sub-layer
fill(rnn.h2h, 0.05)
for x in xs:
    h = rnn(x)
print("rnn", np.round(h.data, 6))

lstm = L.LSTM(3, in_size=2)
for k, name in enumerate(["x2f", "x2i", "x2o", "x2u", "h2f", "h2i", "h2o", "h2u"]):
    fill(getattr(lstm, name), 0.02 * (k + 1))
for x in xs:
    h = lstm(x)
print("lstm", np.round(h.data, 6))


class Net(Model):
    def __init__(self):
        super().__init__()
        self.lstm = L.LSTM(4)
        self.fc = L.Linear(1)

    def forward(self, x):
        return self.fc(self.lstm(x))


net = Net()
y0 = [net(x).data for x in xs]
net.save_weights("net.npz")
other = Net()
other.load_weights("net.npz")
y1 = [other(x).data for x in xs]
print("same after load:", all(np.array_equal(a, b) for a, b in zip(y0, y1)))
