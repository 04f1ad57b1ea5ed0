"""Reading untrusted data files without trusting their headers.

A header (an IDX shape, a tar member size) says how many bytes follow; a hostile or corrupt
file can claim terabytes. The readers check such a claim against what the file can hold
before allocating anything, and read in chunks, so memory grows only with the bytes that
really arrive.
"""

from __future__ import annotations

# Deflate cannot expand one compressed byte into more than 1032 bytes (zlib's documented
# maximum ratio), so a gzip file of n bytes decompresses to at most 1032 n bytes.
DEFLATE_MAX_RATIO = 1032
CHUNK_BYTES = 1 << 20


def read_exactly(stream, n: int) -> bytearray:
    """Up to ``n`` bytes from ``stream`` (fewer only at its end), read a chunk at a time."""
    data = bytearray()
    while len(data) < n:
        chunk = stream.read(min(CHUNK_BYTES, n - len(data)))
        if not chunk:
            break
        data += chunk
    return data
