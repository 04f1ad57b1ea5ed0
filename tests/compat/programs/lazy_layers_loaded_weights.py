# Lazily sized layers (no in_size) whose weights are loaded or set before their first call.
import numpy as np

import dezero.functions as F
import dezero.layers as L
from dezero import Model


class CNN(Model):
    def __init__(self):
        super().__init__()
        self.conv = L.Conv2d(4, kernel_size=3, pad=1)
        self.fc = L.Linear(3)

    def forward(self, x):
        x = F.relu(self.conv(x))
        x = F.pooling(x, 2, 2)
        return self.fc(F.reshape(x, (x.shape[0], -1)))


x = np.random.rand(2, 1, 6, 6).astype(np.float32)
model = CNN()
y0 = model(x)
model.save_weights("cnn.npz")

fresh = CNN()
fresh.load_weights("cnn.npz")
y1 = fresh(x)
print("same output after loading:", np.array_equal(y0.data, y1.data), y1.shape)

lin = L.Linear(2)
lin.W.data = np.arange(6, dtype=np.float32).reshape(3, 2)
print(lin(np.ones((1, 3), np.float32)))

conv = L.Conv2d(2, kernel_size=3, pad=1)
conv.W.data = np.ones((2, 1, 3, 3), np.float32)
print(conv(np.ones((1, 1, 3, 3), np.float32)).data.sum())

deconv = L.Deconv2d(1, kernel_size=2, stride=2)
deconv.W.data = np.ones((3, 1, 2, 2), np.float32)
print(deconv(np.ones((1, 3, 2, 2), np.float32)).data.sum())
