"""A model of a block-wise prefix cache, as vLLM's works: a prompt is cut into blocks of
``block`` tokens, each block named by a hash of everything up to its end, and a request finds
cached the leading full blocks an earlier request computed. At least one prompt token is
always computed (the model needs it to produce the first output token), so a prompt cached in
full reports one block less, as vLLM does.

The simulated engine uses it to report deterministic ``cached_tokens`` without a model
(labelled as simulated like the rest of its output), and cost estimates use it to count each
shared prefix of a batch file once.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Hashable, Sequence

DEFAULT_BLOCK = 16


def block_hashes(tokens: Sequence[Hashable], block: int) -> list[bytes]:
    """One hash per full block, each covering the whole prefix up to that block's end."""
    out: list[bytes] = []
    running = b""
    for start in range(0, len(tokens) - block + 1, block):
        piece = repr(tuple(tokens[start : start + block])).encode()
        running = hashlib.blake2b(running + piece, digest_size=16).digest()
        out.append(running)
    return out


class PrefixCache:
    """Least recently used blocks, up to ``capacity`` of them (None: no limit)."""

    def __init__(self, block: int = DEFAULT_BLOCK, capacity: int | None = None) -> None:
        if block <= 0:
            raise ValueError("a prefix cache block holds at least one token")
        self.block = block
        self.capacity = capacity
        self._blocks: OrderedDict[bytes, None] = OrderedDict()

    def serve(self, tokens: Sequence[Hashable]) -> int:
        """Cached tokens of a prompt computed now; its blocks are cached afterwards."""
        hashes = block_hashes(tokens, self.block)
        usable = max(0, (len(tokens) - 1) // self.block)
        hit = 0
        while hit < min(usable, len(hashes)) and hashes[hit] in self._blocks:
            hit += 1
        for h in hashes:
            self._blocks[h] = None
            self._blocks.move_to_end(h)
        if self.capacity is not None:
            while len(self._blocks) > self.capacity:
                self._blocks.popitem(last=False)
        return hit * self.block
