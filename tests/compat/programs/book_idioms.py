# A tour of the book's idioms (steps 33-47), each printing what it computes.
import numpy as np

import dezero
import dezero.functions as F
import dezero.layers as L
from dezero import Variable, optimizers
from dezero.models import MLP

# Step 33: Newton's method with the second derivative by double backprop.
x = Variable(np.array(2.0))
for i in range(5):
    y = x ** 4 - 2 * x ** 2
    x.cleargrad()
    y.backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    gx.backward()
    x.data -= gx.data / x.grad.data
print("newton", x)

# Step 34: higher derivatives of sin.
x = Variable(np.array(1.0))
y = F.sin(x)
y.backward(create_graph=True)
for i in range(3):
    gx = x.grad
    x.cleargrad()
    gx.backward(create_graph=True)
    print("sin derivative", i + 2, x.grad)

# Step 36: double backprop through a gradient.
x = Variable(np.array(2.0))
y = x ** 2
y.backward(create_graph=True)
gx = x.grad
x.cleargrad()
z = gx ** 3 + y
z.backward()
print("double backprop", x.grad)

# Steps 37-40: shapes, sums and broadcasting.
x = Variable(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
y = F.sum(F.reshape(x, (6,)) * 2) + F.sum(x.T, axis=0).sum()
y.backward()
print("shapes", y, x.grad)
x0 = Variable(np.array([1.0, 2.0, 3.0]))
x1 = Variable(np.array([10.0]))
y = x0 + x1
y.backward()
print("broadcast", y, x1.grad)
print("sum_to", dezero.utils.sum_to(np.ones((2, 3)), (1, 3)))

# Step 41-42: matmul and linear regression.
np.random.seed(0)
x = np.random.rand(100, 1)
y = 5 + 2 * x + np.random.rand(100, 1)
W = Variable(np.zeros((1, 1)))
b = Variable(np.zeros(1))
for i in range(50):
    y_pred = F.matmul(x, W) + b
    loss = F.mean_squared_error(y, y_pred)
    W.cleargrad()
    b.cleargrad()
    loss.backward()
    W.data -= 0.1 * W.grad.data
    b.data -= 0.1 * b.grad.data
print("regression", W, b, loss)

# Steps 43-46: a two-layer net with Layer, Model and an optimizer.
x = np.random.rand(100, 1)
y = np.sin(2 * np.pi * x) + np.random.rand(100, 1)
model = MLP((10, 1))
optimizer = optimizers.MomentumSGD(0.2).setup(model)
for i in range(200):
    loss = F.mean_squared_error(y, model(x))
    model.cleargrads()
    loss.backward()
    optimizer.update()
print("mlp loss %.6f" % float(loss.data))
layer = L.Linear(3)
print("linear", layer(np.ones((2, 4), np.float32)).shape, layer.W.shape)

# Step 47: softmax cross entropy and the no-grad switch.
x = np.array([[0.2, -0.4], [0.3, 0.5], [1.3, -3.2], [2.1, 0.3]])
t = np.array([2, 0, 1, 0])
model = MLP((10, 3))
loss = F.softmax_cross_entropy(model(x), t)
print("cross entropy %.6f" % float(loss.data))
with dezero.using_config("enable_backprop", False):
    print("no graph:", (model(x) * 2).creator is None)
p = F.softmax(model(x))
print("softmax rows sum to one:", np.allclose(p.data.sum(axis=1), 1))
