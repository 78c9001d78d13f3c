"""A layer's attention as a function of what its softmax is made of, computed in query blocks.

A model backend captures each layer's post-rotary queries and keys (plus scaling, soft-cap,
sliding window, sinks and the mask) while the model runs its own fast kernel. Everything the
explorer shows is recomputed from them a block of query rows at a time, so no tensor of a whole
layer's `[heads, n, n]` size is ever allocated. Precomputed attention arrives dense and is read
through the same interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch

MASKED = -1e30
"""Logit of a masked key: finite, so masked weights are exactly 0 and 0 * logit stays 0 (no NaN)."""


@dataclass
class RowBlock:
    """Rows [q0, q1) of a layer's attention over keys [k0, k1), with per-row statistics that fall
    out of the softmax itself (no extra pass over the weights)."""

    weights: torch.Tensor
    """`[batch, heads, rows, k1 - k0]` float32"""
    k0: int
    row_sum: torch.Tensor
    """`[batch, heads, rows]`: 1, less what a sink takes; 0 for a row that sees no key."""
    row_max: torch.Tensor
    """`[batch, heads, rows]`: the largest weight in each row."""
    entropy: torch.Tensor
    """`[batch, heads, rows]`: -sum p log p of each row."""
    lse: torch.Tensor | None = None
    """`[batch, heads, rows]`: log of each row's softmax denominator (infinite for a row that sees no
    key), where the weights come from logits (a capture)."""


class LayerAttention(Protocol):
    """One layer's attention weights, read a block of query rows at a time."""

    # Read-only properties: plain attributes satisfy them too.
    @property
    def batch(self) -> int: ...
    @property
    def n_heads(self) -> int: ...
    @property
    def n(self) -> int: ...
    @property
    def causal(self) -> bool: ...
    @property
    def device(self) -> torch.device: ...

    def key_range(self, q0: int, q1: int) -> tuple[int, int]:
        """Keys [k0, k1) outside of which rows [q0, q1) have no weight."""
        ...

    def block(self, q0: int, q1: int, heads: range | None = None) -> RowBlock:
        """Rows [q0, q1) of the weights over `key_range(q0, q1)`, with their statistics."""
        ...


@dataclass
class LayerCapture:
    """What one layer's softmax is made of, on that layer's device (captured dtype)."""

    query: torch.Tensor
    """`[batch, heads, n, d]`, after rotary embeddings and any query norm."""
    key: torch.Tensor
    """`[batch, key-value heads, n, d]`, before the grouped-query repeat."""
    scaling: float
    softcap: float | None = None
    sliding_window: int | None = None
    """A query sees keys q - k < sliding_window (with the mask, where one was given)."""
    sinks: torch.Tensor | None = None
    """`[heads]` logits of a sink column in the softmax's denominator (gpt-oss)."""
    mask: torch.Tensor | None = None
    """`[batch, 1, q, k]` bool (True: attend) or additive float; `[batch, k]` bool key padding; or None."""
    causal: bool = True
    value: torch.Tensor | None = None
    """`[batch, key-value heads, n, d]`, kept when asked for (value-weighted views)."""
    row_lse: torch.Tensor | None = None
    """`[batch, heads, n]` float32: each row's log-sum-exp, kept by the sweep that scores the layer,
    so a column is one pass of q . k (`column`)."""
    _key32: torch.Tensor | None = field(default=None, repr=False)

    @property
    def batch(self) -> int:
        return int(self.query.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.query.shape[1])

    @property
    def n(self) -> int:
        return int(self.query.shape[2])

    @property
    def group(self) -> int:
        """Query heads per key-value head."""
        return self.n_heads // int(self.key.shape[1])

    @property
    def device(self) -> torch.device:
        return self.query.device

    def nbytes(self) -> int:
        tensors = [self.query, self.key, self.value, self.mask]
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)

    def key_range(self, q0: int, q1: int) -> tuple[int, int]:
        if not self.causal or (self.mask is not None and self.mask.dim() == 4):
            return 0, self.n
        start = 0 if self.sliding_window is None else max(0, q0 - self.sliding_window + 1)
        return start, q1

    def block(self, q0: int, q1: int, heads: range | None = None) -> RowBlock:
        heads = heads or range(self.n_heads)
        k0, k1 = self.key_range(q0, q1)
        logits = self._logits(q0, q1, k0, k1, heads)
        if self.sinks is not None:
            weights, row_sum, row_max, entropy, peak, lse = self._softmax_with_sinks(logits, heads)
        else:
            # torch's softmax works a row at a time in cache; its largest weight gives the log-sum-exp
            # back (lse = largest logit - log largest weight), and the entropy is
            # lse - sum p * logit: a dot product per row, not a logarithm per weight.
            weights = torch.softmax(logits, dim=-1)
            row_max = weights.amax(dim=-1, keepdim=True)
            peak = logits.amax(dim=-1, keepdim=True)  # two plain maxima beat one with indices
            row_sum = torch.ones_like(row_max)
            lse = peak - torch.log(row_max)
            entropy = lse - torch.linalg.vecdot(weights, logits).unsqueeze(-1)
        if self.mask is not None or self.sliding_window is not None or not self.causal:
            # A row that sees no key at all (left padding) has no attention: zeros, not a uniform guess.
            sees_nothing = peak <= MASKED / 2
            if bool(sees_nothing.any()):
                weights.masked_fill_(sees_nothing, 0.0)
                for stat in (row_sum, row_max, entropy):
                    stat.masked_fill_(sees_nothing, 0.0)
                lse = lse.masked_fill(sees_nothing, float("inf"))
        return RowBlock(weights, k0, row_sum[..., 0], row_max[..., 0], entropy[..., 0], lse[..., 0])

    def _softmax_with_sinks(self, logits: torch.Tensor, heads: range) -> tuple[torch.Tensor, ...]:
        """The sink takes its share of the denominator and is not shown: rows sum to less than 1."""
        peak = logits.amax(dim=-1, keepdim=True)
        logits.sub_(peak)
        weights = torch.exp(logits)
        total = weights.sum(dim=-1, keepdim=True)
        dot = torch.linalg.vecdot(weights, logits).unsqueeze(-1)
        sink = self.sinks[heads.start : heads.stop].float().to(peak.device)[None, :, None, None]  # type: ignore[index]
        denominator = total + torch.exp(sink - peak)
        weights.div_(denominator)
        row_sum, row_max = total / denominator, 1.0 / denominator
        entropy = torch.log(denominator) * row_sum - dot / denominator
        return weights, row_sum, row_max, entropy, peak, peak + torch.log(denominator)

    def column(self, head: int, key: int, batch: int = 0) -> torch.Tensor | None:
        """`[n]` float32: the weights key `key` receives in `head` from every query, from the kept
        row log-sum-exps (one q . k per query, no softmax); None until the layer has been swept."""
        if self.row_lse is None:
            return None
        g = self.group
        q = self.query[batch : batch + 1, head : head + 1].float() * self.scaling
        k = self.key[batch : batch + 1, head // g : head // g + 1, key : key + 1].float()
        logits = q @ k.transpose(-1, -2)  # [1, 1, n, 1]
        if self.softcap is not None:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        one = self if self.mask is None or self.mask.shape[0] == 1 else self._with_mask(self.mask[batch : batch + 1])
        logits = one.masked(logits, 0, self.n, key, key + 1)
        lse = self.row_lse[batch, head].to(logits.device)
        return torch.exp(logits[0, 0, :, 0] - lse).masked_fill_(logits[0, 0, :, 0] <= MASKED / 2, 0.0)

    def _with_mask(self, mask: torch.Tensor) -> LayerCapture:
        return LayerCapture(
            self.query, self.key, self.scaling, self.softcap, self.sliding_window, self.sinks, mask, self.causal
        )

    def _keys32(self) -> torch.Tensor:
        # Upcast once per layer, not per block: logits are formed in float32 for exact weights.
        if self._key32 is None:
            self._key32 = self.key.float()
        return self._key32

    def release_blocks(self) -> None:
        """Drop the float32 copy of the keys kept while a layer is read block by block."""
        self._key32 = None

    def _logits(self, q0: int, q1: int, k0: int, k1: int, heads: range) -> torch.Tensor:
        g = self.group
        kv0, kv1 = heads.start // g, -(-heads.stop // g)
        b, rows = self.batch, q1 - q0
        # Query heads of one key-value head share its keys: [b, kv, g * rows, d] @ [b, kv, d, keys].
        q = self.query[:, kv0 * g : kv1 * g, q0:q1].float() * self.scaling
        k = self._keys32()[:, kv0:kv1, k0:k1]
        logits = torch.matmul(q.reshape(b, kv1 - kv0, g * rows, -1), k.transpose(-1, -2))
        logits = logits.view(b, (kv1 - kv0) * g, rows, k1 - k0)[:, heads.start - kv0 * g : heads.stop - kv0 * g]
        if self.softcap is not None:
            logits = torch.tanh(logits.div_(self.softcap)).mul_(self.softcap)
        if self.mask is None and self.sliding_window is None and self.causal and k1 == q1 and k0 <= q0:
            # Plain causal: only the block's last square, above its diagonal, is masked.
            above = torch.ones(rows, rows, dtype=torch.bool, device=logits.device).triu_(1)
            logits[..., k1 - k0 - rows :].masked_fill_(above, MASKED)
            return logits
        return self._apply_mask(logits, q0, q1, k0, k1)

    def _apply_mask(self, logits: torch.Tensor, q0: int, q1: int, k0: int, k1: int) -> torch.Tensor:
        mask = self.mask
        if mask is not None and mask.dim() == 4:
            block = mask[:, :, q0:q1, k0:k1].to(logits.device)
            if block.dtype == torch.bool:
                return logits.masked_fill(~block, MASKED)
            return (logits + block.float()).clamp_min(MASKED)
        allowed = self._structural_mask(q0, q1, k0, k1, logits.device)
        if mask is not None:  # [batch, key] padding
            allowed = allowed[None, None] & mask[:, None, None, k0:k1].to(device=logits.device, dtype=torch.bool)
        return logits.masked_fill(~allowed, MASKED)

    def masked(self, logits: torch.Tensor, q0: int, q1: int, k0: int, k1: int) -> torch.Tensor:
        """`logits` of rows [q0, q1) and keys [k0, k1) with every masked cell at MASKED."""
        return self._apply_mask(logits, q0, q1, k0, k1)

    def _structural_mask(self, q0: int, q1: int, k0: int, k1: int, device: torch.device) -> torch.Tensor:
        if not self.causal and self.sliding_window is None:
            return torch.ones(q1 - q0, k1 - k0, dtype=torch.bool, device=device)
        q = torch.arange(q0, q1, device=device)[:, None]
        k = torch.arange(k0, k1, device=device)[None, :]
        allowed = k <= q if self.causal else torch.ones_like(k <= q)
        if self.sliding_window is not None:
            allowed = allowed & (q - k < self.sliding_window)
        return allowed


class DenseAttention:
    """Attention that arrives whole (precomputed, or a model that only returns weights)."""

    def __init__(self, pattern: torch.Tensor) -> None:
        self.pattern = pattern
        """`[batch, heads, q, k]`"""
        self.batch, self.n_heads, self.n = (int(s) for s in pattern.shape[:3])
        self.causal = bool((pattern[..., 0, 1:] == 0).all()) if self.n > 1 else True

    @property
    def device(self) -> torch.device:
        return self.pattern.device

    def key_range(self, q0: int, q1: int) -> tuple[int, int]:
        return (0, q1) if self.causal else (0, self.n)

    def block(self, q0: int, q1: int, heads: range | None = None) -> RowBlock:
        heads = heads or range(self.n_heads)
        k0, k1 = self.key_range(q0, q1)
        weights = self.pattern[:, heads.start : heads.stop, q0:q1, k0:k1].float()
        entropy = torch.special.entr(weights).sum(dim=-1)
        return RowBlock(weights, k0, weights.sum(dim=-1), weights.amax(dim=-1), entropy)


def full_rows(attention: LayerAttention, q0: int, q1: int, heads: range | None = None) -> torch.Tensor:
    """Weights of rows [q0, q1) over every key, `[batch, heads, rows, n]` float32."""
    block = attention.block(q0, q1, heads)
    k0, k1 = block.k0, block.k0 + block.weights.shape[-1]
    if (k0, k1) == (0, attention.n):
        return block.weights
    return torch.nn.functional.pad(block.weights, (k0, attention.n - k1))


def dense(attention: LayerAttention, heads: range | None = None) -> torch.Tensor:
    """The whole `[batch, heads, n, n]` pattern: for short prompts and references only."""
    if isinstance(attention, DenseAttention):
        h = heads or range(attention.n_heads)
        return attention.pattern[:, h.start : h.stop].float()
    return full_rows(attention, 0, attention.n, heads)


def rows_per_block(attention: LayerAttention, heads: int, budget_bytes: int) -> int:
    """Query rows whose float32 weights and logits for `heads` heads fit in `budget_bytes`."""
    per_row = attention.batch * heads * attention.n * 4 * 3  # weights, logits and one temporary
    return max(1, min(attention.n, budget_bytes // max(per_row, 1)))


def block_budget(device: torch.device) -> int:
    """Bytes of temporaries per block: large blocks keep a GPU busy; small ones keep a CPU in cache."""
    return 512 * 2**20 if device.type == "cuda" else 48 * 2**20


def weights_block(weights: torch.Tensor, k0: int, seen: torch.Tensor, statistics: bool) -> RowBlock:
    """A RowBlock of weights whose rows sum to one where `seen` (else are zero)."""
    if not statistics:  # the views read weights only: skip a logarithm per weight
        zeros = torch.zeros_like(seen, dtype=weights.dtype)
        return RowBlock(weights, k0, seen.to(weights.dtype), zeros, zeros)
    entropy = torch.special.entr(weights).sum(dim=-1)
    return RowBlock(weights, k0, seen.to(weights.dtype), weights.amax(dim=-1), entropy)


def looks_causal(pattern: torch.Tensor) -> bool:
    """Whether dense weights `[..., q, k]` are causal: the first query, which sees only itself in a
    causal model, puts all its weight on key 0."""
    return bool((pattern[..., 0, 0] > 0.999).all())


class ReweightedLayer:
    """A layer's attention read through a change of each block's weights (value weighting, sinks
    excluded): the same interface as the layer, one block of rows at a time, no `[heads, n, n]`
    tensor. Subclasses say how a block's weights `[b, heads, rows, keys]` change."""

    def __init__(self, attention: LayerAttention) -> None:
        self.attention = attention
        self.batch, self.n_heads, self.n, self.causal = (
            attention.batch,
            attention.n_heads,
            attention.n,
            attention.causal,
        )

    @property
    def device(self) -> torch.device:
        return self.attention.device

    def key_range(self, q0: int, q1: int) -> tuple[int, int]:
        return self.attention.key_range(q0, q1)

    def block(self, q0: int, q1: int, heads: range | None = None) -> RowBlock:
        heads = heads or range(self.n_heads)
        inner = self.attention.block(q0, q1, heads)
        k1 = inner.k0 + inner.weights.shape[-1]
        return self.reweigh(inner.weights, heads, inner.k0, k1)

    def reweigh(self, weights: torch.Tensor, heads: range, k0: int, k1: int) -> RowBlock:
        raise NotImplementedError
