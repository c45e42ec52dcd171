"""The pass that reads coded per-channel key scales before the fused attention's main launch
(``ecc_tensor.ops.attention.channel_scales``): for every row, the scales' and zero points'
data bits exactly as stored (not corrected: a row with any non-zero syndrome is flagged, and
the main launch leaves its blocks to the deferred launch, which decodes), and the flag set
exactly where the metadata's reference decode finds a codeword not clean. On CPU tensors the
kernel runs in Triton's interpreter."""

from __future__ import annotations

import pytest
import torch

from ecc_tensor.codecs import CodecTables
from ecc_tensor.metadata import MetadataLayout, codec_tables
from ecc_tensor.ops.attention.channel_scales import _group_tiles, channel_scale_words, read_channel_scales
from ecc_tensor.ops.codec_kernels import nibble_parity_table


def data_bits_as_stored(layout: MetadataLayout, meta: torch.Tensor) -> torch.Tensor:
    """The float32 words a row's codewords hold in their data bits, uncorrected: Golay's
    systematic 24-bit codewords, three bytes little-endian, data in the low 12 bits (three
    values, the first lowest)."""
    storage = layout.storage
    units = meta[..., : storage.units * 3].to(torch.int64).unflatten(-1, (storage.units, 3))
    words = units[..., 0] | units[..., 1] << 8 | units[..., 2] << 16
    nibbles = (words.unsqueeze(-1) >> torch.tensor([0, 4, 8])) & 15
    return layout.words_from_nibbles(nibbles.flatten(-2)[..., : 8 * layout.words].to(torch.uint8))


@pytest.mark.parametrize("codec", ["hamming84", "hamming74"])
@pytest.mark.parametrize("head_dim,rows", [(16, 7), (128, 7), (4, 100)],
                         ids=["16-channels", "128-channels", "4-groups-a-token"])  # 7: not a multiple of the pass's rows a
# program; 100 rows of four grouped scales (the word path's grouped scales): 64 a program, the last program part full
@pytest.mark.parametrize("symmetric", [True, False], ids=["symmetric", "zero-points"])
def test_the_pass_reads_data_bits_as_stored_and_flags_rows_with_a_syndrome(codec, head_dim, rows, symmetric, kernel_device):
    g = torch.Generator().manual_seed(head_dim + symmetric)
    layout = MetadataLayout(codec, head_dim, symmetric)
    assert layout.meta_codec_name == "golay24"
    tables = codec_tables(codec, "cpu")
    scale = torch.rand(rows, head_dim, generator=g) + 0.01
    zero = None if symmetric else torch.randint(0, 16, (rows, head_dim), generator=g).float()
    meta = layout.store(scale, zero, CodecTables(*tables[2:]))
    # Row 1: one flipped data bit (corrected by a decode); row 3: four in one codeword
    # (detected); row 4: one parity bit (the data intact, the syndrome not); row 6: the last
    # codeword's parity. The others clean.
    meta[1, 0] ^= 0x01
    meta[3, 3] ^= 0x0F
    meta[4, 2] ^= 0x80
    meta[6, 3 * layout.storage.units - 1] ^= 0x10
    meta[rows - 1, 0] ^= 0x02  # the last row, in the last program
    _, status, _ = layout.load(meta, CodecTables(*tables[2:]))
    flagged = (status != 0).any(-1)
    want = [False, True, False, True, True, False, True] + [False] * (rows - 7)
    want[-1] = True
    assert flagged.tolist() == want

    parity_table = nibble_parity_table(tables[2], layout.storage.codec.k).to(kernel_device)
    out = read_channel_scales(meta.reshape(1, 1, rows, -1).to(kernel_device), parity_table, layout)
    words = channel_scale_words(layout)
    got = out.cpu().view(torch.int32).reshape(rows, words)
    assert torch.equal(got[:, :-1], data_bits_as_stored(layout, meta).view(torch.int32))
    assert torch.equal(got[:, -1] != 0, flagged)


def test_the_pass_reads_only_rows_that_cover_written_codewords(kernel_device):
    """With each sequence's codeword rows, the pass reads and writes the rows of scales that
    cover some of them, and leaves the others (a cache's storage past what is written) as they
    were: 3 rows of scales of 4 codeword rows each, per (sequence, KV head)."""
    layout = MetadataLayout("hamming84", 16, True)
    tables = codec_tables("hamming84", "cpu")
    g = torch.Generator().manual_seed(0)
    batch, heads, rows = 2, 2, 3
    meta = layout.store(torch.rand(batch * heads * rows, 16, generator=g) + 0.01, None, CodecTables(*tables[2:]))
    parity_table = nibble_parity_table(tables[2], layout.storage.codec.k).to(kernel_device)
    words = channel_scale_words(layout)
    full = read_channel_scales(meta.reshape(batch, heads, rows, -1).to(kernel_device), parity_table, layout).cpu()
    sentinel = torch.full((batch * heads * rows * words,), -1.0, device=kernel_device)
    lens = torch.tensor([5, 0], device=kernel_device)  # sequence 0: rows of scales 0 and 1 (rows 0-3, 4); sequence 1: none
    got = read_channel_scales(meta.reshape(batch, heads, rows, -1).to(kernel_device), parity_table, layout, lens, 4, sentinel).cpu()
    assert got.data_ptr() != full.data_ptr()
    got, full = got.view(torch.float32).reshape(batch, heads, rows, words), full.view(torch.float32).reshape(batch, heads, rows, words)
    read = torch.zeros(batch, heads, rows, dtype=torch.bool)
    read[0, :, :2] = True
    assert torch.equal(got[read], full[read])
    assert (got[~read] == -1.0).all()


@pytest.mark.parametrize("offset", [1, 2, 3])
def test_the_pass_reads_rows_of_a_view_that_starts_inside_a_word(offset, kernel_device):
    """The pass loads 32-bit words: a view whose first byte is not a word's (a storage offset)
    reads as its aligned copy does, rows of 2049 bytes starting at every byte of a word. Only a
    GPU can fail it: the interpreter loads a word from any byte."""
    layout = MetadataLayout("hamming84", 128, False)
    tables = codec_tables("hamming84", "cpu")
    g = torch.Generator().manual_seed(offset)
    rows = 5
    scale = torch.rand(rows, 128, generator=g) + 0.01
    zero = torch.randint(0, 16, (rows, 128), generator=g).float()
    meta = layout.store(scale, zero, CodecTables(*tables[2:]))
    meta[2, 7] ^= 0x04  # a flagged row
    parity_table = nibble_parity_table(tables[2], layout.storage.codec.k).to(kernel_device)
    buffer = torch.full((offset + meta.numel() + 3,), 0xFF, dtype=torch.uint8)  # bytes around the view set
    buffer[offset: offset + meta.numel()] = meta.flatten()
    view = buffer.to(kernel_device)[offset: offset + meta.numel()].view(1, 1, rows, -1)
    assert view.storage_offset() % 4 == offset
    got = read_channel_scales(view, parity_table, layout).cpu()
    want = read_channel_scales(meta.reshape(1, 1, rows, -1).to(kernel_device), parity_table, layout).cpu()
    assert torch.equal(got, want)
    assert (got.view(torch.int32).reshape(rows, -1)[:, -1] != 0).tolist() == [False, False, True, False, False]


def test_the_pass_tiles_cover_every_group_of_a_row_once():
    """Every row length the pass reads (1-512 float32 words): its groups of three words in a
    head tile, the largest power of two of them, and a tail tile of the rest rounded up to a
    power of two (none where the head holds them all); one tile for the main programs."""
    def power_of_two(n):
        return n > 0 and n & (n - 1) == 0

    for words in range(1, 513):
        groups = (words + 2) // 3
        head, tail = _group_tiles(words, True)
        assert power_of_two(head) and head <= groups < 2 * head, (words, head)
        rest = groups - head
        assert (tail == 0) if rest == 0 else (power_of_two(tail) and tail // 2 < rest <= tail), (words, head, tail)
        one, none = _group_tiles(words, False)
        assert none == 0 and power_of_two(one) and one // 2 < groups <= one, (words, one)
