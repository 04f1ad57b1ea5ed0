"""Tiny Shakespeare as character ids, for next-character language models (DeZero's dataset)."""

from __future__ import annotations

import os

import numpy as np

from zerograd.data.dataset import Dataset
from zerograd.data.download import cache_dir, get_file
from zerograd.data.transforms import TransformLike


def char_vocabulary(text: str) -> tuple[dict[str, int], dict[int, str]]:
    """Ids in order of first appearance: ``(char_to_id, id_to_char)``."""
    char_to_id: dict[str, int] = {}
    for char in text:
        if char not in char_to_id:
            char_to_id[char] = len(char_to_id)
    return char_to_id, {i: c for c, i in char_to_id.items()}


class Shakespeare(Dataset):
    """Character ids of ``input.txt``: ``data[i]`` is char ``i``, ``label[i]`` char ``i + 1``.

    ``char_to_id`` / ``id_to_char`` number the characters in order of first appearance, as in
    DeZero. The text is read from ``root`` (default ``cache_dir()``) as ``file_name``, and
    downloaded only with ``download=True``. ``Shakespear`` is DeZero's spelling of this class.
    """

    url = ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/"
           "input.txt")
    file_name = "tinyshakespeare.txt"

    def __init__(self, train: bool = True, transform: TransformLike | None = None,
                 target_transform: TransformLike | None = None,
                 root: str | os.PathLike | None = None,
                 download: bool = False) -> None:
        self.root = os.fspath(root) if root is not None else cache_dir()
        self.download = download
        super().__init__(train, transform, target_transform)

    def prepare(self) -> None:
        path = os.path.join(self.root, self.file_name)
        if not os.path.isfile(path):
            if not self.download:
                raise FileNotFoundError(f"Shakespeare: no {path}; pass root= the directory "
                                        f"holding {self.file_name}, or download=True to fetch "
                                        f"{self.url}")
            path = get_file(self.url, self.file_name, directory=self.root)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        self.char_to_id, self.id_to_char = char_vocabulary(text)
        lookup = self.char_to_id
        ids = np.fromiter((lookup[c] for c in text), dtype=np.int64, count=len(text))
        self.data = ids[:-1]
        self.label = ids[1:]


Shakespear = Shakespeare

__all__ = ["Shakespear", "Shakespeare", "char_vocabulary"]
