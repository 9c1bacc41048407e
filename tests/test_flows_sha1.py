"""The column-wise one-block SHA-1 equals hashlib, and so does Community ID built on it."""

from __future__ import annotations

import base64
import hashlib
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdiag.flows import sha1
from netdiag.flows.communityid import PORT_PROTOS, community_id_bytes
from netdiag.flows.sha1 import (
    MAX_ONE_BLOCK_LEN,
    message_words,
    padded_blocks,
    sha1_of_words,
    sha1_one_block,
)

# numpy overflow/cast warnings would mean a step left uint32 wrapping arithmetic
pytestmark = pytest.mark.filterwarnings("error")


def hashlib_digests(messages: list[bytes]) -> np.ndarray:
    """(n, 20) uint8 reference digests."""
    joined = b"".join(hashlib.sha1(m).digest() for m in messages)
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(messages), 20)


@pytest.mark.parametrize("length", range(MAX_ONE_BLOCK_LEN + 1))
def test_every_one_block_length_matches_hashlib(length: int) -> None:
    rng = np.random.default_rng(length)
    messages = rng.integers(0, 256, size=(33, length), dtype=np.uint8)
    got = sha1_one_block(messages)
    assert got.dtype == np.uint8 and got.shape == (33, 20)
    assert np.array_equal(got, hashlib_digests([bytes(row) for row in messages]))


def test_known_answers() -> None:
    # FIPS 180 example "abc" and the empty message
    got = sha1_one_block(np.frombuffer(b"abc", dtype=np.uint8)[None, :])
    assert bytes(got[0]).hex() == "a9993e364706816aba3e25717850c26c9cd0d89d"
    empty = sha1_one_block(np.zeros((1, 0), dtype=np.uint8))
    assert bytes(empty[0]).hex() == "da39a3ee5e6b4b0d3255bfef95601890afd80709"


@pytest.mark.parametrize("fill", [0x00, 0xFF, 0x80, 0x7F])
def test_constant_bytes_carry_heavy_and_zero_words(fill: int) -> None:
    for length in (0, 1, 4, 16, 40, 55):
        messages = np.full((3, length), fill, dtype=np.uint8)
        assert np.array_equal(
            sha1_one_block(messages), hashlib_digests([bytes(r) for r in messages])
        )


def test_per_row_lengths_ignore_the_bytes_past_each_length() -> None:
    rng = np.random.default_rng(7)
    width = 70  # wider than a block: bytes past 55 never belong to a message
    messages = rng.integers(0, 256, size=(500, width), dtype=np.uint8)
    lengths = rng.integers(0, MAX_ONE_BLOCK_LEN + 1, size=500)
    expected = hashlib_digests([bytes(row[:k]) for row, k in zip(messages, lengths, strict=True)])
    assert np.array_equal(sha1_one_block(messages, lengths), expected)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=MAX_ONE_BLOCK_LEN), min_size=1, max_size=20))
def test_random_messages_match_hashlib(messages: list[bytes]) -> None:
    width = max(len(m) for m in messages)
    packed = np.zeros((len(messages), width), dtype=np.uint8)
    for i, m in enumerate(messages):
        packed[i, : len(m)] = np.frombuffer(m, dtype=np.uint8)
    lengths = np.array([len(m) for m in messages])
    assert np.array_equal(sha1_one_block(packed, lengths), hashlib_digests(messages))


def test_rows_split_across_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sha1, "_ROWS_PER_PASS", 7)
    rng = np.random.default_rng(3)
    messages = rng.integers(0, 256, size=(50, 24), dtype=np.uint8)
    assert np.array_equal(sha1_one_block(messages), hashlib_digests([bytes(r) for r in messages]))


def test_padding_layout() -> None:
    block = padded_blocks(np.frombuffer(b"abc", dtype=np.uint8)[None, :])
    assert bytes(block[0, :4]) == b"abc\x80"
    assert not block[0, 4:62].any()
    assert block[0, 62:].tolist() == [0, 24]
    words = message_words(block)
    assert words.dtype == np.uint32 and words.shape == (16, 1)
    assert words[:, 0].tolist()[:2] == [0x61626380, 0] and words[15, 0] == 24


def test_empty_input() -> None:
    assert sha1_one_block(np.zeros((0, 10), dtype=np.uint8)).shape == (0, 20)
    assert sha1_of_words(np.zeros((16, 0), dtype=np.uint32)).shape == (0, 20)


def test_inputs_that_do_not_fit_one_block_are_refused() -> None:
    with pytest.raises(ValueError, match="0..55"):
        sha1_one_block(np.zeros((2, 56), dtype=np.uint8))
    with pytest.raises(ValueError, match="0..55"):
        sha1_one_block(np.zeros((0, 70), dtype=np.uint8))
    with pytest.raises(ValueError, match="0..55"):
        sha1_one_block(np.zeros((2, 60), dtype=np.uint8), np.array([3, 56]))
    with pytest.raises(ValueError, match="lengths must have shape"):
        sha1_one_block(np.zeros((2, 8), dtype=np.uint8), np.array([3]))
    with pytest.raises(ValueError, match="2-D"):
        sha1_one_block(np.zeros(8, dtype=np.uint8))
    with pytest.raises(ValueError, match="uint32"):
        sha1_of_words(np.zeros((16, 4), dtype=np.int64))


# --- Community ID inputs -------------------------------------------------------------------


def random_flows(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Flow columns as community_id_bytes takes them: v4/v6, with and without ports, ICMP
    one-way messages, equal addresses (ordered by port) and equal ports."""
    v6 = rng.random(n) < 0.3
    proto = rng.choice([6, 17, 132, 1, 58, 50, 47, 0, 255], size=n)
    src = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    dst = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    dst[:, :2] = src[:, :2]  # shared prefix: ordering decided by later bytes
    same = rng.random(n) < 0.15
    dst[same] = src[same]
    src[~v6, 4:] = 0
    dst[~v6, 4:] = 0
    sport = rng.integers(0, 65536, size=n)
    dport = np.where(rng.random(n) < 0.1, sport, rng.integers(0, 65536, size=n))
    one_way = np.isin(proto, (1, 58)) & (rng.random(n) < 0.5)
    return dict(
        proto=proto,
        src=src,
        dst=dst,
        addr_len=np.where(v6, 16, 4),
        sport=sport,
        dport=dport,
        one_way=one_way,
    )


def reference_input(flows: dict[str, np.ndarray], i: int, seed: int) -> bytes:
    """The Community ID v1 hash input of flow i, packed byte by byte as the spec writes it."""
    alen = int(flows["addr_len"][i])
    src, dst = bytes(flows["src"][i, :alen]), bytes(flows["dst"][i, :alen])
    sport, dport = int(flows["sport"][i]), int(flows["dport"][i])
    if not flows["one_way"][i] and (dst, dport) < (src, sport):
        src, dst, sport, dport = dst, src, dport, sport
    proto = int(flows["proto"][i])
    packed = struct.pack("!H", seed) + src + dst + struct.pack("!BB", proto, 0)
    if proto in PORT_PROTOS:
        packed += struct.pack("!HH", sport, dport)
    return packed


def community_ids_of(flows: dict[str, np.ndarray], seed: int) -> np.ndarray:
    return community_id_bytes(
        flows["proto"],
        flows["src"],
        flows["dst"],
        flows["addr_len"],
        flows["sport"],
        flows["dport"],
        flows["one_way"],
        seed=seed,
    )


@pytest.mark.parametrize("seed", [0, 1, 0x1234, 0xFFFF])
def test_community_id_inputs_hash_like_hashlib(seed: int) -> None:
    rng = np.random.default_rng(seed)
    flows = random_flows(rng, 400)
    inputs = [reference_input(flows, i, seed) for i in range(400)]
    assert {len(x) for x in inputs} == {12, 16, 36, 40}
    # the byte inputs through the generic path
    packed = np.zeros((400, 40), dtype=np.uint8)
    for i, x in enumerate(inputs):
        packed[i, : len(x)] = np.frombuffer(x, dtype=np.uint8)
    lengths = np.array([len(x) for x in inputs])
    assert np.array_equal(sha1_one_block(packed, lengths), hashlib_digests(inputs))
    # and the column-wise Community ID, whose words are built without the byte block
    expected = [b"1:" + base64.b64encode(hashlib.sha1(x).digest()) for x in inputs]
    got = community_ids_of(flows, seed)
    assert got.dtype == np.dtype("S30")
    assert got.tolist() == expected


def test_community_id_of_an_unknown_address_length_stays_the_zero_digest() -> None:
    flows = random_flows(np.random.default_rng(1), 3)
    flows["addr_len"] = np.array([4, 0, 16])
    got = community_ids_of(flows, 0)
    assert got[1] == b"1:" + base64.b64encode(bytes(20))
    assert got[0] == b"1:" + base64.b64encode(hashlib.sha1(reference_input(flows, 0, 0)).digest())
