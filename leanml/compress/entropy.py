"""Entropy coding for the `.packed` format (Deep Compression stage 3, Han et al. 2016).

Streams of small integers (k-bit codes, cluster indices) are stored fixed-width or canonical
Huffman coded (only the code lengths are stored, never the tree); sparse positions as a bitmask,
Golomb-Rice coded gaps, or Huffman coded gap classes (DEFLATE-style: the bit length of gap+1,
then its low bits raw). Every candidate may also go through a standard codec (raw DEFLATE or
raw LZMA2); `smallest` keeps whichever is smallest and says how, so the decoder can undo it.
All of it is deterministic: the same input always gives the same bytes.
"""

from __future__ import annotations

import heapq
import lzma
import zlib
from collections.abc import Callable

import numpy as np

# Code lengths are stored in 5 bits: Huffman codes of streams below ~3.5 M symbols (Fibonacci
# worst case) never need more, and a longer one is simply not offered as a candidate.
MAX_LENGTH = 31
LENGTH_BITS = 5
# Preset 9's 64 MiB window costs ~80 ms to set up per call, 25 calls per small model; a tensor's
# stream is far smaller than 4 MiB, where the output is byte-for-byte the same (checked).
LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": 1 << 22}]


# --- bits --------------------------------------------------------------------------------------


def pack_bits(codes: np.ndarray, bits: int) -> bytes:
    """Unsigned integer codes (< 2^bits) packed into a bit stream, `bits` bits each."""
    flat = np.asarray(codes).astype(">u4").reshape(-1, 1).view(np.uint8)
    stream = np.unpackbits(flat, axis=1)[:, 32 - bits :]
    return np.packbits(stream.reshape(-1)).tobytes()


def unpack_bits(data: bytes, bits: int, count: int) -> np.ndarray:
    stream = np.unpackbits(np.frombuffer(data, np.uint8))[: count * bits].reshape(count, bits)
    padded = np.zeros((count, 32), np.uint8)
    padded[:, 32 - bits :] = stream
    return np.packbits(padded, axis=1).view(">u4").reshape(-1).astype(np.uint32)


def _code_bits(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The bits of each value, most significant first, each written in its own length."""
    values = np.asarray(values, np.uint64).reshape(-1)
    lengths = np.asarray(lengths, np.int64).reshape(-1)
    if values.size == 0:
        return np.zeros(0, np.uint8)
    width = max(int(lengths.max()), 1)
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64)
    grid = ((values[:, None] >> shifts) & np.uint64(1)).astype(np.uint8)
    keep = np.arange(width)[None, :] >= (width - lengths)[:, None]
    return grid[keep]


def _concat(parts: list[np.ndarray]) -> bytes:
    return np.packbits(np.concatenate(parts) if parts else np.zeros(0, np.uint8)).tobytes()


class _Reader:
    """Reads a bit stream MSB first (decoding is sequential; the streams are a few 10k bits)."""

    def __init__(self, data: bytes):
        self.bits = np.unpackbits(np.frombuffer(data, np.uint8)).tolist()
        self.at = 0

    def read(self, n: int) -> int:
        if self.at + n > len(self.bits):
            raise ValueError("packed stream ends early")
        value = 0
        for bit in self.bits[self.at : self.at + n]:
            value = (value << 1) | bit
        self.at += n
        return value


# --- canonical Huffman ----------------------------------------------------------------------


def huffman_lengths(counts: np.ndarray) -> np.ndarray:
    """Optimal code length per symbol (0 = unused); a lone symbol gets length 1 but costs no
    bits in the stream (see `huffman_encode`). Ties are broken by symbol: deterministic."""
    counts = np.asarray(counts, np.int64)
    lengths = np.zeros(counts.size, np.int64)
    used = np.flatnonzero(counts)
    if used.size == 1:
        lengths[used] = 1
    if used.size <= 1:
        return lengths
    heap = [(int(counts[s]), int(s), [int(s)]) for s in used]
    heapq.heapify(heap)
    while len(heap) > 1:
        c1, k1, s1 = heapq.heappop(heap)
        c2, k2, s2 = heapq.heappop(heap)
        lengths[s1 + s2] += 1
        heapq.heappush(heap, (c1 + c2, min(k1, k2), s1 + s2))
    return lengths


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical code values: symbols sorted by (length, symbol), consecutive codes per length."""
    codes = np.zeros(lengths.size, np.uint64)
    code, previous = 0, 0
    for symbol in sorted(np.flatnonzero(lengths), key=lambda s: (lengths[s], s)):
        code <<= int(lengths[symbol]) - previous
        codes[symbol], previous = code, int(lengths[symbol])
        code += 1
    return codes


def _table(lengths: np.ndarray) -> list[np.ndarray]:
    """The stored table: alphabet size in 16 bits, then 5 bits per symbol's code length."""
    return [_code_bits([lengths.size], [16]), _code_bits(lengths, np.full(lengths.size, 5))]


def _read_table(reader: _Reader) -> np.ndarray:
    size = reader.read(16)
    return np.array([reader.read(LENGTH_BITS) for _ in range(size)], np.int64)


class _Decoder:
    """Canonical Huffman decoding from the code lengths alone."""

    def __init__(self, lengths: np.ndarray):
        order = sorted(np.flatnonzero(lengths), key=lambda s: (lengths[s], s))
        self.symbols = [int(s) for s in order]
        self.single = len(order) == 1
        codes = canonical_codes(lengths)
        self.table = {(int(lengths[s]), int(codes[s])): int(s) for s in order}

    def symbol(self, reader: _Reader) -> int:
        if self.single:
            return self.symbols[0]
        code, length = 0, 0
        while length < MAX_LENGTH:
            code, length = (code << 1) | reader.read(1), length + 1
            found = self.table.get((length, code))
            if found is not None:
                return found
        raise ValueError("invalid Huffman code in packed stream")


def _huffman_lengths(symbols: np.ndarray, alphabet: int) -> np.ndarray:
    lengths = huffman_lengths(np.bincount(symbols, minlength=alphabet))
    if lengths.max(initial=0) > MAX_LENGTH or alphabet >= 1 << 16:
        raise OverflowError
    return lengths


def _symbol_bits(symbols: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each symbol's (code, code length); a lone symbol costs no bits: its count says it all."""
    if np.count_nonzero(lengths) <= 1:
        return np.zeros(symbols.size, np.int64), np.zeros(symbols.size, np.int64)
    return canonical_codes(lengths)[symbols].astype(np.int64), lengths[symbols]


def huffman_encode(symbols: np.ndarray, alphabet: int) -> bytes:
    """`symbols` (ints < `alphabet`) as code-length table + canonical Huffman bit stream."""
    symbols = np.asarray(symbols, np.int64).reshape(-1)
    lengths = _huffman_lengths(symbols, alphabet)
    return _concat([*_table(lengths), _code_bits(*_symbol_bits(symbols, lengths))])


def huffman_decode(data: bytes, count: int) -> np.ndarray:
    reader = _Reader(data)
    decoder = _Decoder(_read_table(reader))
    return np.array([decoder.symbol(reader) for _ in range(count)], np.uint32)


# --- sparse positions as gaps ---------------------------------------------------------------


def gaps(positions: np.ndarray) -> np.ndarray:
    """Zeros skipped before each non-zero (sorted flat positions -> gaps ≥ 0)."""
    return np.diff(np.asarray(positions, np.int64), prepend=-1) - 1


def positions_of(gap: np.ndarray) -> np.ndarray:
    return np.cumsum(np.asarray(gap, np.int64) + 1) - 1


def rice_encode(values: np.ndarray, k: int) -> bytes:
    """Golomb-Rice: value >> k in unary (ones, then a zero), then its k low bits."""
    values = np.asarray(values, np.int64)
    high = values >> k
    unary = [np.ones(int(h), np.uint8) for h in high] if values.size else []
    parts = []
    for u, low in zip(unary, values & ((1 << k) - 1), strict=True):
        parts += [u, np.zeros(1, np.uint8), _code_bits([low], [k])]
    return _concat(parts)


def rice_decode(data: bytes, k: int, count: int) -> np.ndarray:
    reader, out = _Reader(data), []
    for _ in range(count):
        high = 0
        while reader.read(1):
            high += 1
        out.append((high << k) | reader.read(k))
    return np.array(out, np.int64)


def classgap_encode(values: np.ndarray) -> bytes:
    """Huffman over each value's class c = bit length of value+1, then its c-1 low bits raw."""
    v1 = np.asarray(values, np.int64) + 1
    classes = np.array([int(v).bit_length() for v in v1], np.int64)
    lengths = _huffman_lengths(classes, int(classes.max(initial=0)) + 1)
    codes, code_len = _symbol_bits(classes, lengths)
    # interleaved per value: its class code, then its low bits (class - 1 of them)
    widths = np.stack([code_len, classes - 1], axis=1).reshape(-1)
    low = v1 - (np.int64(1) << np.maximum(classes - 1, 0))
    vals = np.stack([codes, low], axis=1).reshape(-1)
    keep = widths > 0
    return _concat([*_table(lengths), _code_bits(vals[keep], widths[keep])])


def classgap_decode(data: bytes, count: int) -> np.ndarray:
    reader = _Reader(data)
    decoder = _Decoder(_read_table(reader))
    out = []
    for _ in range(count):
        c = decoder.symbol(reader)
        out.append((1 << (c - 1)) + reader.read(c - 1) - 1)
    return np.array(out, np.int64)


# --- choosing the smallest ------------------------------------------------------------------

CODECS: dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
    "raw": (lambda b: b, lambda b: b),
    "deflate": (
        lambda b: (lambda c: c.compress(b) + c.flush())(zlib.compressobj(9, zlib.DEFLATED, -15)),
        lambda b: zlib.decompress(b, -15),
    ),
    "lzma": (
        lambda b: lzma.compress(b, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS),
        lambda b: lzma.decompress(b, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS),
    ),
}


def smallest(candidates: dict[str, bytes]) -> tuple[str, str, bytes]:
    """(scheme, codec, bytes) of the smallest candidate after each codec; ties: first listed."""
    best = None
    for scheme, blob in candidates.items():
        for codec, (compress, _) in CODECS.items():
            out = compress(blob)
            if best is None or len(out) < len(best[2]):
                best = (scheme, codec, out)
    assert best is not None
    return best


def unwrap(codec: str, data: bytes) -> bytes:
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r} in packed stream")
    return CODECS[codec][1](data)


def symbol_candidates(codes: np.ndarray, bits: int) -> dict[str, bytes]:
    """Ways to store k-bit codes / cluster indices: fixed width, or Huffman when it can apply."""
    codes = np.asarray(codes, np.int64).reshape(-1)
    out = {"fixed": pack_bits(codes, bits)}
    if bits <= 12:  # the 5-bit length table of a wider alphabet outweighs any saving
        try:
            out["huffman"] = huffman_encode(codes, 1 << bits)
        except OverflowError:
            pass
    return out


def decode_symbols(scheme: str, data: bytes, bits: int, count: int) -> np.ndarray:
    if scheme == "fixed":
        return unpack_bits(data, bits, count)
    if scheme == "huffman":
        return huffman_decode(data, count)
    raise ValueError(f"unknown symbol coding {scheme!r} in packed stream")


def position_candidates(mask: np.ndarray) -> dict[str, bytes]:
    """Ways to store where the non-zeros are: a bitmask, Rice-coded gaps (best k), class gaps."""
    flat = np.asarray(mask, bool).reshape(-1)
    gap = gaps(np.flatnonzero(flat))
    out = {"mask": np.packbits(flat).tobytes()}
    if gap.size:
        # Rice size in bits for each k: Σ (g >> k) + n (k + 1); the best k is stored
        k = min(range(16), key=lambda k: int(np.sum(gap >> k)) + gap.size * (k + 1))
        out[f"rice{k}"] = rice_encode(gap, k)
        try:
            out["classgap"] = classgap_encode(gap)
        except OverflowError:
            pass
    return out


def decode_positions(scheme: str, data: bytes, size: int, count: int) -> np.ndarray:
    """The boolean mask (flat, `size` entries) with `count` non-zeros, from its stored form."""
    if scheme == "mask":
        return np.unpackbits(np.frombuffer(data, np.uint8))[:size].astype(bool)
    if scheme.startswith("rice"):
        gap = rice_decode(data, int(scheme[4:]), count)
    elif scheme == "classgap":
        gap = classgap_decode(data, count)
    else:
        raise ValueError(f"unknown position coding {scheme!r} in packed stream")
    mask = np.zeros(size, bool)
    mask[positions_of(gap)] = True
    return mask
