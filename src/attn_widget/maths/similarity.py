"""Head similarity: how alike every two heads' patterns are on one prompt, in clustered order.

The distance is the Jensen-Shannon divergence (base 2, so 0 to 1) between the two heads'
attention rows, averaged over query positions. The order comes from average-linkage
hierarchical clustering (scipy's, with optimal leaf ordering, when scipy is installed; else the
same linkage done here), so heads with alike patterns sit next to each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.cluster.hierarchy import leaves_list, linkage
from scipy.spatial.distance import squareform

from attn_widget.contract import head_label

DISTANCES = ("js",)


@dataclass(frozen=True)
class HeadSimilarity:
    distance: np.ndarray
    """`(n_layers * n_heads, n_layers * n_heads)`, heads in layer-major order (index = layer * n_heads + head)."""
    order: list[tuple[int, int]]
    """(layer, head) of each row and column of `ordered()`: similar heads next to each other."""
    n_heads: int

    def ordered(self) -> np.ndarray:
        index = [layer * self.n_heads + head for layer, head in self.order]
        return self.distance[np.ix_(index, index)]

    def most_alike(self, k: int = 3) -> list[tuple[tuple[int, int], tuple[int, int], float]]:
        """The k pairs of distinct heads with the smallest distance: ((layer, head), (layer, head), distance)."""
        n = self.distance.shape[0]
        rows, cols = np.triu_indices(n, 1)
        values = self.distance[rows, cols]
        order = np.argsort(np.nan_to_num(values, nan=np.inf), kind="stable")[:k]
        h = self.n_heads
        return [(divmod(int(rows[i]), h), divmod(int(cols[i]), h), float(values[i])) for i in order]

    def __repr__(self) -> str:
        pairs = ", ".join(f"{head_label(*a)}\u2013{head_label(*b)} {d:.3f}" for a, b, d in self.most_alike())
        return (
            f"<HeadSimilarity {self.distance.shape[0]} heads, Jensen-Shannon distance (bits, 0 to 1); "
            f"most alike: {pairs}; .ordered() in clustered order>"
        )


def js_distances(patterns: torch.Tensor) -> torch.Tensor:
    """`[N, N]` mean JS divergence (bits) between the rows of every two of N `[q, k]` patterns.

    JS(p, q) = H((p + q) / 2) - (H(p) + H(q)) / 2, so only the mixture's entropy is pairwise.
    """
    p = patterns.float()
    own = torch.special.entr(p).sum(dim=-1)  # [N, q]
    out = torch.empty(p.shape[0], p.shape[0], device=p.device)
    for i in range(p.shape[0]):
        mixed = torch.special.entr((p[i] + p) / 2).sum(dim=-1)  # [N, q]
        out[i] = (mixed - (own[i] + own) / 2).mean(dim=-1)
    out = (out + out.T) / 2  # exact symmetry despite rounding
    out.fill_diagonal_(0)
    return (out / math.log(2)).clamp_min(0)


def cluster_order(distance: np.ndarray) -> list[int]:
    """Leaf order of average-linkage clustering of a symmetric distance matrix."""
    n = len(distance)
    if n <= 2:
        return list(range(n))
    condensed = squareform(np.asarray(distance, dtype=np.float64), checks=False)
    return [int(i) for i in leaves_list(linkage(condensed, "average", optimal_ordering=True))]


def head_similarity(patterns: torch.Tensor, metric: str = "js") -> HeadSimilarity:
    """From every layer's patterns `[layer, head, q, k]`."""
    if metric not in DISTANCES:
        raise ValueError(f"unknown head similarity metric {metric!r}: choose one of {', '.join(DISTANCES)}")
    n_layers, n_heads = patterns.shape[:2]
    distance = js_distances(patterns.reshape(n_layers * n_heads, *patterns.shape[2:])).cpu().numpy()
    order = [divmod(i, n_heads) for i in cluster_order(distance)]
    return HeadSimilarity(distance.astype(np.float64), order, n_heads)
