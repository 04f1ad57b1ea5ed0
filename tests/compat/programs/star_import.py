# `from dezero import *` gives the package, its submodules and its public names.
import numpy as np

from dezero import *

x = Variable(np.array(2.0))
with dezero.no_grad():
    y = x * 2
print(y.creator is None)
model = models.MLP((4, 2))
optimizer = optimizers.SGD(0.1).setup(model)
train_set = datasets.Spiral(train=True)
loader = dataloaders.DataLoader(train_set, batch_size=10)
batch_x, batch_t = next(iter(loader))
print(len(train_set), batch_x.shape, type(layers.Linear(3)).__name__)
print(callable(functions_conv.conv2d), callable(transforms.Compose))
print(isinstance(x, core.Variable), callable(functions.sin), callable(utils.sum_to))
with using_config("train", False):
    print(Config.train)
with test_mode():
    print(Config.train)
print(as_variable(np.ones(2)).shape, as_array(3.0).shape, is_simple_core)
print(issubclass(Parameter, Variable), issubclass(Model, Layer))
print(callable(Function), callable(setup_variable), callable(cuda.get_array_module))
print(issubclass(SeqDataLoader, DataLoader), callable(Dataset))
