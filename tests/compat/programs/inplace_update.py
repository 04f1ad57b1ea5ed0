# Book steps 28 and 29: gradient descent and Newton's method written with NumPy in-place
# operators on .data. The book imports the stage-2 core here, whose gradients are ndarrays in
# DeZero; zerograd's one core gives Variables, so `ndarray -= Variable` must update in place.
import numpy as np

import dezero

if not dezero.is_simple_core:
    from dezero.core_simple import Variable, setup_variable

    setup_variable()


def rosenbrock(x0, x1):
    return 100 * (x1 - x0 ** 2) ** 2 + (1 - x0) ** 2


x0 = Variable(np.array(0.0))
x1 = Variable(np.array(2.0))
lr = 0.001
for i in range(1000):
    y = rosenbrock(x0, x1)
    x0.cleargrad()
    x1.cleargrad()
    y.backward()
    x0.data -= lr * x0.grad
    x1.data -= lr * x1.grad
print(x0, x1)


def f(x):
    return x ** 4 - 2 * x ** 2


def gx2(x):
    return 12 * x ** 2 - 4


x = Variable(np.array(2.0))
for i in range(10):
    print(i, x)
    y = f(x)
    x.cleargrad()
    y.backward()
    x.data -= x.grad / gx2(x.data)

# The same with vectors, and += on a weight array.
w = Variable(np.array([1.0, -2.0, 3.0]))
for i in range(20):
    loss = w * w  # backward from a vector output sums it, as in DeZero
    w.cleargrad()
    loss.backward()
    w.data -= 0.1 * w.grad
print(w)
