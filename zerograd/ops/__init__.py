"""zerograd's ops, one module per family. ``zerograd.functions`` is the public surface."""
