"""Column-wise decoding of a batch of records into a packet chunk (see ``schema.PACKET_COLUMNS``).

Rows are grouped by the link type of their interface; each group's link decoder finds the network
header, then network and transport decoders run once per protocol over all rows carrying it. Every
read is gated by the record's captured bytes: a cut or malformed header becomes a
``decode_error`` text on that row, never an exception. There is no per-packet Python code: loops
run over link types, protocols, VLAN tags, IPv6 extension headers and TCP options, all bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netdiag.addressbook import AddressBook
from netdiag.capture.layers import NETWORK_DECODERS, TRANSPORT_DECODERS
from netdiag.capture.layers.frames import DecodeState, Frames
from netdiag.capture.layers.tcp import TCP_OPTION_COLUMNS
from netdiag.capture.linktypes import LINKTYPE_DECODERS, tshark, unsupported_reason
from netdiag.capture.records import CaptureInfo, RecordBatch
from netdiag.capture.schema import PacketChunk, empty_chunk

#: columns ``decode_batch`` can leave absent when asked to: each costs work no other column
#: needs (MAC interning, the TCP option walk, the payload hash) and never fails a row
SKIPPABLE_COLUMNS = frozenset(
    {
        "eth_src",
        "eth_dst",
        "arp_sha",
        "arp_tha",
        "payload_hash",
        *TCP_OPTION_COLUMNS,
    }
)

#: bytes of payload (after the transport header) that payload_hash covers
HASH_BYTES = 64
_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_HASH_SEED = np.uint64(0xC2B2AE3D27D4EB4F)


@dataclass
class PartlyDecoded:
    """A batch decoded up to its network layer (``start_decode``); ``finish_decode`` ends it.

    Two stages so that two threads can share one capture's decoding (``capture.table``): the
    transport layers of chunk k while the link and network layers of chunk k+1 are decoded.
    """

    chunk: PacketChunk
    frames: Frames
    state: DecodeState


def decode_batch(
    batch: RecordBatch,
    info: CaptureInfo,
    book: AddressBook,
    tshark_fallback: bool = False,
    skip: frozenset[str] = frozenset(),
) -> PacketChunk:
    """Decode the headers of every record of ``batch`` into one chunk of schema columns.

    With ``tshark_fallback``, records of link types without a native decoder are dissected by
    tshark (slow; see ``linktypes.tshark``) instead of being left with a decode_error.
    ``skip`` names columns (of ``SKIPPABLE_COLUMNS``) the caller does not read: they stay
    absent, and the work only they need is not done. Every other column, decode errors
    included, is the same as without it.
    """
    return finish_decode(start_decode(batch, info, book, tshark_fallback, skip))


def start_decode(
    batch: RecordBatch,
    info: CaptureInfo,
    book: AddressBook,
    tshark_fallback: bool = False,
    skip: frozenset[str] = frozenset(),
) -> PartlyDecoded:
    """The first stage of ``decode_batch``: record columns, link and network layers."""
    n = len(batch)
    chunk = empty_chunk(n)
    chunk["frame"][:] = batch.first_frame + np.arange(n, dtype=np.int64)
    chunk["ts_ns"][:] = batch.ts_ns
    chunk["caplen"][:] = batch.caplen
    chunk["wirelen"][:] = batch.wirelen
    iface = np.asarray(batch.iface, dtype=np.int64)
    chunk["iface"][:] = iface
    if batch.comments:
        rows = np.fromiter(batch.comments.keys(), dtype=np.int64) - batch.first_frame
        texts = np.array(list(batch.comments.values()), dtype=object)
        inside = (rows >= 0) & (rows < n)
        chunk["comment"][rows[inside]] = book.intern_text(texts[inside])
    fr = Frames(batch.data, batch.offsets, batch.caplen, batch.wirelen)
    st = DecodeState(chunk, book, skip)
    if n == 0:
        return PartlyDecoded(chunk, fr, st)

    # Per-interface facts, looked up for every row by its interface index.
    count = len(info.interfaces)
    linktypes = np.array([i.linktype for i in info.interfaces] + [-1], dtype=np.int64)
    fcs_len = np.array([max(i.fcs_len, 0) for i in info.interfaces] + [0], dtype=np.int64)
    names = np.array(
        [book.text_code(i.name) if i.name else -1 for i in info.interfaces] + [-1], dtype=np.int32
    )
    known_iface = (iface >= 0) & (iface < count)
    lookup = np.where(known_iface, iface, count)
    row_linktype = linktypes[lookup]
    chunk["linktype"][:] = np.maximum(row_linktype, 0)
    chunk["iface_name"][:] = names[lookup]

    fr.end = np.maximum(np.minimum(fr.end, fr.wire_end - fcs_len[lookup]), 0)
    fr.wire_end = np.maximum(fr.wire_end - fcs_len[lookup], 0)
    st.fail(np.flatnonzero(~known_iface), "frame on an interface the capture never declared")

    # the link types present, from the few interfaces rows use (not a pass over every row)
    used = np.flatnonzero(np.bincount(lookup, minlength=count + 1)[:count])
    for linktype in np.unique(linktypes[used]).tolist():
        rows = np.flatnonzero(row_linktype == linktype)
        decoder = LINKTYPE_DECODERS.get(linktype)
        if decoder is not None:
            decoder(fr, st, rows)
        elif not (tshark_fallback and tshark.decode(fr, st, rows, linktype)):
            st.fail(rows, unsupported_reason(linktype))

    for ethertype, decoder in NETWORK_DECODERS.items():
        rows = np.flatnonzero(st.net == ethertype)
        if len(rows):
            decoder(fr, st, rows)
    return PartlyDecoded(chunk, fr, st)


def finish_decode(part: PartlyDecoded) -> PacketChunk:
    """The second stage of ``decode_batch``: transport layers and the payload hash."""
    fr, st, chunk = part.frames, part.state, part.chunk
    if len(chunk["frame"]) == 0:
        return chunk
    for proto, decoder in TRANSPORT_DECODERS.items():
        rows = np.flatnonzero(st.l4_proto == proto)
        if len(rows):
            decoder(fr, st, rows)

    if "payload_hash" not in st.skip:
        chunk["payload_hash"][:] = payload_hash(fr, st.payload_off)
    return chunk


def payload_hash(fr: Frames, payload_off: np.ndarray) -> np.ndarray:
    """Hash of up to HASH_BYTES bytes from ``payload_off`` to each record's end; -1 if none.

    It only has to tell packets apart well enough to pair one packet seen at two capture points
    (with different link layers, TTLs or NAT), so it mixes 8-byte words with a multiply-xorshift.
    """
    out = np.full(len(fr), -1, dtype=np.int64)
    rows = np.flatnonzero(payload_off >= 0)
    pos = fr.start[rows] + payload_off[rows]
    avail = np.minimum(fr.limit(rows) - pos, HASH_BYTES)
    keep = avail > 0
    rows, pos, avail = rows[keep], pos[keep], avail[keep]
    h = avail.astype(np.uint64) * _HASH_MULTIPLIER ^ _HASH_SEED
    # all the hashed bytes of a row in one gather, as big-endian 8-byte words
    words = fr.window(pos, HASH_BYTES).view(">u8").astype(np.uint64)
    active = np.arange(len(rows))
    for word in range(HASH_BYTES // 8):
        if word:
            active = active[avail[active] > 8 * word]
            if len(active) == 0:
                break
        value = words[active, word]
        remaining = np.minimum(avail[active] - 8 * word, 8).astype(np.uint64)
        value &= ~np.uint64(0) << (np.uint64(64) - np.uint64(8) * remaining)
        mixed = (h[active] ^ value) * _HASH_MULTIPLIER
        h[active] = mixed ^ (mixed >> np.uint64(29))
    hashed = h.view(np.int64)
    hashed[hashed == -1] = 0  # -1 means "no payload"
    out[rows] = hashed
    return out
