"""The running batch of the transformers engine and the tensor surgery on it.

Rows are left-padded to a common length so every row's next token sits in the last column.
Joining and pruning rows edits the KV cache tensors directly; the per-row request state is
opaque here (``Batch`` is generic over it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch

from inference_platform.engines.base import EngineError

RowT = TypeVar("RowT")


@dataclass(eq=False)
class Batch(Generic[RowT]):
    """The running batch. Row ``i`` of every tensor belongs to ``seqs[i]``."""

    seqs: list[RowT]
    cache: Any
    mask: torch.Tensor  # [B, L] 1 for real tokens, 0 for left padding
    positions: torch.Tensor  # [B] position id of ``next_tokens``
    next_tokens: torch.Tensor  # [B] sampled but not yet fed to the model


def cache_pairs(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """Per-layer (keys, values) of a plain full-attention DynamicCache, else None.

    Merging and trimming caches edits these tensors directly; sliding-window or other special
    layers keep extra state, so we refuse (and fall back to not joining running batches).
    """
    layers = getattr(cache, "layers", None)
    if layers is not None:  # transformers >= 4.56 layered caches
        pairs = []
        for layer in layers:
            keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
            if type(layer).__name__ != "DynamicLayer" or not isinstance(keys, torch.Tensor):
                return None
            assert isinstance(values, torch.Tensor)
            pairs.append((keys, values))
        return pairs
    keys_list, values_list = getattr(cache, "key_cache", None), getattr(cache, "value_cache", None)
    if isinstance(keys_list, list) and isinstance(values_list, list):
        return list(zip(keys_list, values_list, strict=True))
    return None


def _cache_from_pairs(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> Any:
    from transformers import DynamicCache

    return DynamicCache(pairs)


def _left_pad(tensor: torch.Tensor, pad: int, dim: int) -> torch.Tensor:
    if pad == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = pad
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def merge_batches(running: Batch[RowT], joining: Batch[RowT]) -> Batch[RowT]:
    """Append ``joining`` rows to ``running``, left-padding the shorter KV cache."""
    old_pairs, new_pairs = cache_pairs(running.cache), cache_pairs(joining.cache)
    if old_pairs is None or new_pairs is None:
        raise EngineError("cannot merge KV caches of this model")
    length = max(running.mask.shape[1], joining.mask.shape[1])
    pad_old, pad_new = length - running.mask.shape[1], length - joining.mask.shape[1]
    pairs = [
        (
            torch.cat([_left_pad(k_old, pad_old, -2), _left_pad(k_new, pad_new, -2)], dim=0),
            torch.cat([_left_pad(v_old, pad_old, -2), _left_pad(v_new, pad_new, -2)], dim=0),
        )
        for (k_old, v_old), (k_new, v_new) in zip(old_pairs, new_pairs, strict=True)
    ]
    return Batch(
        seqs=running.seqs + joining.seqs,
        cache=_cache_from_pairs(pairs),
        mask=torch.cat([_left_pad(running.mask, pad_old, 1), _left_pad(joining.mask, pad_new, 1)]),
        positions=torch.cat([running.positions, joining.positions]),
        next_tokens=torch.cat([running.next_tokens, joining.next_tokens]),
    )


def trim_left_padding(batch: Batch[Any]) -> None:
    """Drop leading columns that are padding for every remaining row (e.g. a long prompt left)."""
    pairs = cache_pairs(batch.cache)
    if pairs is None:
        return
    used = batch.mask.any(dim=0).nonzero()
    first = int(used[0]) if used.numel() else 0
    if first == 0:
        return
    batch.mask = batch.mask[:, first:]
    batch.cache = _cache_from_pairs([(k[..., first:, :], v[..., first:, :]) for k, v in pairs])


def top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero out the tail outside the smallest set of tokens whose mass reaches ``top_p``."""
    sorted_probs, order = torch.sort(probs, descending=True)
    cumulative = torch.cumsum(sorted_probs, dim=-1)
    # Keep a token if the mass before it is still below top_p (the top token always stays).
    keep_sorted = (cumulative - sorted_probs) < top_p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return probs * keep
