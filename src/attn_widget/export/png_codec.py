"""PNG files from numpy arrays with the standard library's zlib: no imaging library needed for
pixels (snapshots, matrices embedded in SVG)."""

from __future__ import annotations

import struct
import zlib

import numpy as np


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_rgb(pixels: np.ndarray, level: int = 6) -> bytes:
    """`(h, w, 3)` uint8 to PNG bytes (8-bit RGB, no filter: matrices of flat cells compress well)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w, channels = pixels.shape
    if channels != 3:
        raise ValueError("encode_rgb wants (h, w, 3) pixels")
    rows = np.concatenate([np.zeros((h, 1), np.uint8), pixels.reshape(h, w * 3)], axis=1)
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
        + _chunk(b"IEND", b"")
    )


def encode_indexed(indices: np.ndarray, palette: np.ndarray, level: int = 6) -> bytes:
    """`(h, w)` uint8 indices into a `(256, 3)` palette: a quarter of RGB before compression."""
    indices = np.ascontiguousarray(indices, dtype=np.uint8)
    h, w = indices.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), indices], axis=1)
    header = struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0)
    plte = np.ascontiguousarray(palette, dtype=np.uint8).reshape(-1, 3).tobytes()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"PLTE", plte)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
        + _chunk(b"IEND", b"")
    )


def decode_rgb(data: bytes) -> np.ndarray:
    """The inverse of `encode_rgb`/`encode_indexed` for files they wrote (tests, pixel checks)."""
    pos, width, height, color_type, palette, idat = 8, 0, 0, 2, None, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, _depth, color_type = struct.unpack(">IIBB", body[:10])
        elif kind == b"PLTE":
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            idat += body
    channels = 3 if color_type == 2 else 1
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * channels)
    if raw[:, 0].any():
        raise ValueError("decode_rgb reads unfiltered PNGs only (the ones this module writes)")
    pixels = raw[:, 1:].reshape(height, width, channels)
    return palette[pixels[..., 0]] if palette is not None else pixels
