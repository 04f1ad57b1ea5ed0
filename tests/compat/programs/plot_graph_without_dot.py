# Book steps 26, 27 and 35 draw graphs; without Graphviz's `dot` the program carries on.
import os

import numpy as np

from dezero import Variable
from dezero.utils import get_dot_graph, plot_dot_graph

os.environ["PATH"] = os.pathsep.join(p for p in ["/nonexistent"])  # no `dot` to be found

x = Variable(np.array(1.0))
x.name = "x"
y = x * x + x  # (zerograd records `+ 1` as one AddConstant node, not Add + a constant)
y.name = "y"
print(get_dot_graph(y, verbose=False).count("->"))
plot_dot_graph(y, verbose=False, to_file="graph.png")
print("carried on; png written:", os.path.exists("graph.png"))
