"""The code blocks of docs/nn.md and docs/cnn.md that describe lazy sizing from existing
weights, the input-dtype rule and copying run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
IMPORTS = {
    "nn.md": "import numpy as np\nimport zerograd.functions as F\nimport zerograd.layers as L\n"
             "from zerograd.models import MLP, Model, Sequential\n",
    "cnn.md": "import numpy as np\nfrom zerograd.nn.conv import Conv2d\n",
}
# (file, the text that starts the part of the file, the text that ends it)
SECTIONS = [
    ("nn.md", "## Lazy sizes and weights that come first", "\n## Input dtypes"),
    ("nn.md", "## Input dtypes", "\n## Copying and pickling"),
    ("nn.md", "## Copying and pickling", "\n## Layers"),
    ("cnn.md", "**Lazy sizes.**", "**Input dtype.**"),
]


def _blocks(file: str, start: str, end: str) -> list[str]:
    text = (DOCS / file).read_text()
    part = text[text.index(start):text.index(end, text.index(start))]
    return re.findall(r"```python\n(.*?)```", part, flags=re.S)


@pytest.mark.parametrize("file, start, end", SECTIONS, ids=[s[1] for s in SECTIONS])
def test_doc_blocks_run(file, start, end):
    blocks = _blocks(file, start, end)
    assert blocks, f"no code block in {file} under {start!r}"
    for code in blocks:
        exec(compile(IMPORTS[file] + code, f"{file}: {start}", "exec"), {})
