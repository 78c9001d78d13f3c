"""Tensors in, tensors out: a layer's attention read in query blocks and everything computed from
it (scores, thumbnails, tiles, value weighting, differences, attribution, sinks, similarity,
detectors, head classes, summaries). No model, no widget."""
