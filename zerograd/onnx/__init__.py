"""ONNX export: ``zerograd.onnx.export(model, example_inputs, "model.onnx")``.

Each exportable op declares its lowering beside its own code (``Function.to_onnx(g,
*inputs)``, writing nodes through the graph builder ``g``); export traces the model once
and walks the recorded graph. ``onnx`` is needed only when ``export`` runs
(``pip install 'zerograd[onnx]'``); importing this package does not import it.
See docs/interop.md, "ONNX export".
"""

from zerograd.onnx._errors import ExportError
from zerograd.onnx._export import DEFAULT_OPSET, export, exportable_ops, lowering_of

__all__ = ["DEFAULT_OPSET", "ExportError", "export", "exportable_ops", "lowering_of"]
