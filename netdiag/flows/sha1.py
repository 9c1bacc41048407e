"""SHA-1 digests of many short messages at once, as numpy uint32 column operations.

Written from the SHA-1 definition (FIPS 180-4 section 6.1, RFC 3174): a message of at most 55
bytes fits one 64-byte block once padded (0x80, zeros, 64-bit big-endian bit length), so its
digest is one compression of the initial hash value. Every step of that compression is the same
for all messages, so each of the 80 rounds runs as a few vectorised operations over all rows
instead of a Python call per message (Community ID hashes one such message per flow).

numpy uint32 arithmetic wraps modulo 2**32, which is the addition SHA-1 specifies; all operands
here stay uint32 arrays (scalars are Python ints, which NEP 50 keeps at the array's dtype), so no
step promotes to a wider type (in-place operations would refuse the cast) and no overflow warning
is raised. The message schedule is a 16-word circular window, not 80 words per row, and rows are
hashed in passes of at most 65536 so the temporaries stay bounded on very large inputs.
"""

from __future__ import annotations

import numpy as np

#: longest message that still fits one block after the 0x80 byte and the 8-byte length field
MAX_ONE_BLOCK_LEN = 55

#: initial hash value H(0) (FIPS 180-4 5.3.1)
_H0 = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)
#: round constants, one per group of 20 rounds (FIPS 180-4 4.2.1)
_K = (0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xCA62C1D6)

#: rows hashed per pass: bounds the temporaries (~23 uint32 columns) for very large inputs
_ROWS_PER_PASS = 1 << 16


def padded_blocks(messages: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """(n, 64) uint8 SHA-1 blocks of n messages: bytes, 0x80, zeros, big-endian bit length.

    ``messages`` is (n, width) uint8; row i's message is its first ``lengths[i]`` bytes (all
    ``width`` bytes when ``lengths`` is None), and every length must be at most 55.
    """
    messages = np.asarray(messages, dtype=np.uint8)
    if messages.ndim != 2:
        raise ValueError(f"messages must be a 2-D (n, width) array, got shape {messages.shape}")
    n, width = messages.shape
    if lengths is None:
        lengths = np.full(n, width, dtype=np.int64)
        body = messages
    else:
        lengths = np.asarray(lengths, dtype=np.int64)
        if lengths.shape != (n,):
            raise ValueError(f"lengths must have shape ({n},), got {lengths.shape}")
        body = messages[:, :MAX_ONE_BLOCK_LEN]  # later bytes belong to no message
    limit = min(width, MAX_ONE_BLOCK_LEN)
    too_wide = body is messages and width > limit
    if too_wide or (n and (lengths.min() < 0 or lengths.max() > limit)):
        raise ValueError(f"message lengths must be 0..{limit} bytes to fit one SHA-1 block")
    block = np.zeros((n, 64), dtype=np.uint8)
    body_width = body.shape[1]
    if body is messages:
        block[:, :body_width] = body
    else:
        # bytes past a row's length are not part of its message: leave them zero
        inside = np.arange(body_width, dtype=np.uint8) < lengths.astype(np.uint8)[:, None]
        np.copyto(block[:, :body_width], body, where=inside)
    block[np.arange(n), lengths] = 0x80
    bits = lengths * 8  # at most 440: two bytes of the 8-byte length field
    block[:, 62] = bits >> 8
    block[:, 63] = bits & 0xFF
    return block


def _compress(words: np.ndarray) -> np.ndarray:
    """(16, m) uint32 message words of m one-block messages -> (5, m) uint32 hash words."""
    m = words.shape[1]
    # words that are zero in every row add nothing in rounds 0..15 (Community ID: the padding)
    used = [bool(words[j].any()) for j in range(16)]
    # W[t]: the input rows for t < 16 (only read), then a 16-slot window holding W[t] in slot
    # t mod 16, so W[t - 3], W[t - 8] and W[t - 14] are still there when W[t] is made
    schedule = list(words)
    window = np.empty((16, m), dtype=np.uint32)
    a, b, c, d, e = (np.full(m, h, dtype=np.uint32) for h in _H0)
    tmp = np.empty(m, dtype=np.uint32)
    spare = np.empty(m, dtype=np.uint32)
    for t in range(80):
        if t < 16:
            wt = schedule[t]
        else:
            # W[t] = ROTL1(W[t-3] ^ W[t-8] ^ W[t-14] ^ W[t-16]), written over W[t-16]'s slot
            wt = window[t & 15]
            if t < 32:
                np.bitwise_xor(schedule[t - 16], schedule[t - 3], out=wt)
            else:
                wt ^= schedule[t - 3]  # the slot still holds W[t-16]
            wt ^= schedule[t - 8]
            wt ^= schedule[t - 14]
            np.right_shift(wt, 31, out=tmp)
            wt <<= 1
            wt |= tmp
            schedule.append(wt)
        # f(b, c, d) of this round's group, into tmp
        if t < 20:  # Ch: d ^ (b & (c ^ d))
            np.bitwise_xor(c, d, out=tmp)
            tmp &= b
            tmp ^= d
        elif 40 <= t < 60:  # Maj: (b & c) | (d & (b | c))
            np.bitwise_or(b, c, out=tmp)
            tmp &= d
            np.bitwise_and(b, c, out=spare)
            tmp |= spare
        else:  # Parity: b ^ c ^ d
            np.bitwise_xor(b, c, out=tmp)
            tmp ^= d
        # T = ROTL5(a) + f + e + K + W[t], accumulated into e (the old e is not needed after)
        e += tmp
        e += _K[t // 20]
        if t >= 16 or used[t]:
            e += wt
        np.left_shift(a, 5, out=tmp)
        e += tmp
        np.right_shift(a, 27, out=tmp)
        e += tmp  # the two shifted halves share no bits, so + equals |
        # c = ROTL30(b), in place
        np.right_shift(b, 2, out=tmp)
        b <<= 30
        b |= tmp
        a, b, c, d, e = e, a, b, c, d
    out = np.empty((5, m), dtype=np.uint32)
    for k, (word, h) in enumerate(zip((a, b, c, d, e), _H0, strict=True)):
        np.add(word, h, out=out[k])
    return out


def message_words(blocks: np.ndarray) -> np.ndarray:
    """(n, 64) uint8 padded blocks -> (16, n) uint32 big-endian message words, one row per word."""
    return np.ascontiguousarray(blocks.view(">u4").astype(np.uint32).T)


def sha1_of_words(words: np.ndarray) -> np.ndarray:
    """(n, 20) uint8 SHA-1 digests of n padded one-block messages given as (16, n) uint32 words.

    For callers that can build the message words column-wise directly (Community ID does),
    skipping the byte block; ``sha1_one_block`` is the same from message bytes.
    """
    words = np.asarray(words)
    if words.dtype != np.uint32 or words.ndim != 2 or words.shape[0] != 16:
        raise ValueError(f"words must be a (16, n) uint32 array, got {words.dtype} {words.shape}")
    n = words.shape[1]
    digest_words = np.empty((n, 5), dtype=">u4")
    for start in range(0, n, _ROWS_PER_PASS):
        stop = min(start + _ROWS_PER_PASS, n)
        digest_words[start:stop] = _compress(words[:, start:stop]).T
    return digest_words.view(np.uint8).reshape(n, 20)


def sha1_one_block(messages: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """(n, 20) uint8 SHA-1 digests of n messages of at most 55 bytes each.

    ``messages`` is (n, width) uint8; row i's message is its first ``lengths[i]`` bytes (all
    ``width`` bytes when ``lengths`` is None). Equal to ``hashlib.sha1(message).digest()`` per row.
    """
    return sha1_of_words(message_words(padded_blocks(messages, lengths)))
