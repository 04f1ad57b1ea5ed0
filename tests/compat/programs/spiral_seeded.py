# Book step 48 (shortened): Spiral, MLP(10, 3), SGD, hand-made shuffled batches.
import math

import numpy as np

import dezero
import dezero.functions as F
from dezero import optimizers
from dezero.models import MLP

max_epoch = 5
batch_size = 30
hidden_size = 10
lr = 1.0

x, t = dezero.datasets.get_spiral(train=True)
model = MLP((hidden_size, 3))
optimizer = optimizers.SGD(lr).setup(model)

data_size = len(x)
max_iter = math.ceil(data_size / batch_size)
for epoch in range(max_epoch):
    index = np.random.permutation(data_size)
    sum_loss = 0
    for i in range(max_iter):
        batch_index = index[i * batch_size:(i + 1) * batch_size]
        batch_x = x[batch_index]
        batch_t = t[batch_index]
        y = model(batch_x)
        loss = F.softmax_cross_entropy(y, batch_t)
        model.cleargrads()
        loss.backward()
        optimizer.update()
        sum_loss += float(loss.data) * len(batch_t)
    print("epoch %d, loss %.4f" % (epoch + 1, sum_loss / data_size))

# Step 49-50 style: the Spiral data set class and DataLoader.
train_set = dezero.datasets.Spiral(train=True)
loader = dezero.DataLoader(train_set, batch_size)
x, t = next(iter(loader))
print(x.shape, t[:5])
