"""Every Triton kernel against the PyTorch reference, bit for bit.

Without a GPU these run under TRITON_INTERPRET=1 on small shapes (see conftest.py); on the
GPU device the same tests run the compiled kernels.
"""

from __future__ import annotations

import re
from unittest import mock

import pytest
import torch
import triton
import triton.language as tl
from hypothesis import example, given, settings
from hypothesis import strategies as st

import ecc_tensor.ops  # noqa: F401  (registers torch.ops.ecc)
from ecc_tensor.codecs import CODEC_NAMES, get_codec
from ecc_tensor.counters import COUNTER_NAMES, new_counters
from ecc_tensor.faults import METADATA_ADDRESS, FaultModel
from ecc_tensor.metadata import MetadataLayout, codec_tables
from ecc_tensor.storage import StorageLayout
from ecc_tensor.ops import codec_kernels, fault_kernels, float_casts

HEAD_DIMS = [1, 5, 8, 12, 17, 64]
ENCODE_HEAD_DIMS = HEAD_DIMS + [128]  # 128: Golay's rows made and read as words (codec_kernels.lane_words)


def tables(codec, device):
    return get_codec(codec).tables(device)


def reference_store(x, codec, group_size=None, symmetric=True):
    return torch.ops.ecc.quantize_encode(x.cpu(), *codec_tables(codec, "cpu"), codec, group_size, symmetric)


@pytest.mark.parametrize("codec,head_dim", [*((c, d) for c in CODEC_NAMES for d in ENCODE_HEAD_DIMS),
                                             ("golay24", 256), ("golay24", 512)])  # a coded window's rows (window_layout.py)
def test_encode_decode_kernels(codec, head_dim, kernel_device):
    g = torch.Generator().manual_seed(head_dim)
    values = torch.randint(0, 16, (3, 4, head_dim), dtype=torch.uint8, generator=g)
    t = tables(codec, kernel_device)
    stored = codec_kernels.triton_encode(values.to(kernel_device), t.encode_table, codec)
    ref = StorageLayout(codec, head_dim).store(values)
    assert torch.equal(stored.cpu(), ref)
    # Corrupt some bytes and decode both ways.
    noisy = ref ^ (torch.rand(ref.shape, generator=g) < 0.3).to(torch.uint8) * torch.randint(1, 128, ref.shape, dtype=torch.uint8,
                                                                                             generator=g)
    if codec == "hamming74":
        noisy &= 0x7F
    v_k, s_k = codec_kernels.triton_decode(noisy.to(kernel_device), t.encode_table, t.syndrome_table, codec, head_dim)
    v_r, s_r = StorageLayout(codec, head_dim).load(noisy)
    assert torch.equal(v_k.cpu(), v_r) and torch.equal(s_k.cpu(), s_r)


def test_hamming74_decode_ignores_bit_7(kernel_device):
    """A Hamming(7,4) codeword takes a byte whose bit 7 no fault model flips and no codeword
    holds: the decode kernel reads past it (as the fused attention does) in clean tiles and in
    tiles it decodes, where the reference refuses such a byte."""
    g = torch.Generator().manual_seed(7)
    head_dim = 128
    values = torch.randint(0, 16, (40, head_dim), dtype=torch.uint8, generator=g)
    layout = StorageLayout("hamming74", head_dim)
    stored = layout.store(values)
    struck = (torch.rand(stored.shape, generator=g) < 0.02).to(torch.uint8)
    flips = struck << torch.randint(0, 7, stored.shape, generator=g, dtype=torch.uint8)
    noisy = stored ^ flips
    noisy[:20] ^= 0x80  # dirty tiles and clean ones alike
    t = tables("hamming74", kernel_device)
    v_k, s_k = codec_kernels.triton_decode(noisy.to(kernel_device), t.encode_table, t.syndrome_table, "hamming74", head_dim)
    v_r, s_r = layout.load(noisy & 0x7F)
    assert torch.equal(v_k.cpu(), v_r) and torch.equal(s_k.cpu(), s_r)
    assert int((s_r != 0).sum()) > 0


@settings(max_examples=25, deadline=None)
@given(
    codec=st.sampled_from(CODEC_NAMES),
    rows=st.integers(1, 70),
    head_dim=st.sampled_from(HEAD_DIMS),
    groups=st.sampled_from([1, 2, 3]),
    symmetric=st.booleans(),
    dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]),
    seed=st.integers(0, 2**31),
)
# A row of one zero: its zero point is 0 - 0, which is +0.0 in the compiled kernel (Triton
# negates as 0 - x) and must be in the reference too (found on the H200).
@example(codec="hamming74", rows=1, head_dim=1, groups=1, symmetric=False, dtype=torch.float32, seed=0)
# Golay's lanes at head_dim 1: the row's one value broadcast, where a gather from a one-column
# tensor failed Triton 3.6's sm_90 compile (found on the H200).
@example(codec="golay24", rows=1, head_dim=1, groups=1, symmetric=False, dtype=torch.float32, seed=0)
def test_quantize_encode_kernel_is_bit_exact(codec, rows, head_dim, groups, symmetric, dtype, seed):
    group_size = head_dim // groups if head_dim % groups == 0 else None
    x = (torch.randn(rows, head_dim, generator=torch.Generator().manual_seed(seed)) * 3).to(dtype)
    x[0, 0] = 0.0  # ties and zeros appear
    device = "cuda" if torch.cuda.is_available() else "cpu"
    encode_table, _, meta_encode_table, _ = codec_tables(codec, device)
    got = codec_kernels.triton_quantize_encode(x.to(device), encode_table, meta_encode_table, codec, group_size, symmetric)
    want = reference_store(x, codec, group_size, symmetric)
    for a, b in zip(got, want):
        assert torch.equal(a.cpu(), b)


@pytest.mark.parametrize("codec", CODEC_NAMES)
@pytest.mark.parametrize("interpolate", [False, True])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("seq_len", [None, 5])
def test_decode_dequantize_kernel_is_bit_exact(codec, interpolate, symmetric, dtype, seq_len, kernel_device):
    """Faults in the values and in the stored scales, decoded by the kernel and the reference."""
    head_dim, group_size = 12, 6
    x = torch.randn(2, 3, 9, head_dim, generator=torch.Generator().manual_seed(1))
    stored, meta = reference_store(x, codec, group_size, symmetric)
    meta_layout = MetadataLayout(codec, head_dim // group_size, symmetric)
    fault = FaultModel("bsc", 0.08, seed=3)
    noisy, _ = fault.apply(stored, StorageLayout(codec, head_dim).exposed_bits_per_byte, step=0)
    noisy_meta, _ = fault.apply(meta, meta_layout.exposed_bits_per_byte, offset=METADATA_ADDRESS, step=0)
    c_ref, c_ker = new_counters(), new_counters(kernel_device)
    length = None if seq_len is None else torch.tensor(seq_len)
    groups = meta_layout.groups
    want = torch.ops.ecc.decode_dequantize(
        noisy, noisy_meta, *codec_tables(codec, "cpu", interpolate), codec, head_dim, groups, symmetric, interpolate, c_ref,
        dtype, length,
    )
    got = codec_kernels.triton_decode_dequantize(  # interpolating, the scales decoded at radius 2 (codec_tables)
        noisy.to(kernel_device), noisy_meta.to(kernel_device), *codec_tables(codec, kernel_device, interpolate),
        codec, head_dim, groups, symmetric, interpolate, c_ker, dtype, None if length is None else length.to(kernel_device),
    )
    # Compared as bits: unprotected (int4) scales can decode to NaN (any NaN matches any NaN).
    assert got.dtype == dtype and same_bits(got.cpu(), want)
    assert torch.equal(c_ker.cpu(), c_ref)
    if codec != "int4":
        assert int(c_ref[COUNTER_NAMES.index("corrected")]) > 0  # faults were actually corrected
        assert int(c_ref[COUNTER_NAMES.index("meta_corrected")]) > 0  # in the scales too


@pytest.mark.parametrize("codec", CODEC_NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("lengths_layout", ["contiguous", "every_other", "expanded"])
def test_a_length_per_sequence_decodes_as_each_sequence_alone(codec, dtype, lengths_layout, kernel_device):
    """``triton_decode_dequantize`` over ``[B, H, S, row]`` with a length per sequence (what the
    attention's unfused fallback passes, one launch for the batch) gives each sequence's values
    and counts as its own decode with its own length: no sequence's rows, nor a program's rows
    across two sequences, counted or taken as interpolation neighbours by another's length.
    Lengths: none written, a few, exactly S, past S, as a tensor of their own or every other
    element of one; or one length expanded to the batch (stride 0), as ``attended_lengths``
    passes it (on an H100 the kernel read such lengths past their one element)."""
    head_dim, seq = 12, 9
    lengths = torch.tensor([0, 4, seq, seq + 3], device=kernel_device)
    if lengths_layout == "every_other":
        lengths = torch.stack([lengths, lengths.flip(0)], 1)[:, 0]
    elif lengths_layout == "expanded":
        lengths = torch.tensor([5], device=kernel_device).expand(4)
    x = torch.randn(len(lengths), 3, seq, head_dim, generator=torch.Generator().manual_seed(4))
    stored, meta = reference_store(x, codec, 6, False)
    meta_layout = MetadataLayout(codec, 2, False)
    fault = FaultModel("bsc", 0.08, seed=5)
    stored, _ = fault.apply(stored, StorageLayout(codec, head_dim).exposed_bits_per_byte, step=0)
    meta, _ = fault.apply(meta, meta_layout.exposed_bits_per_byte, offset=METADATA_ADDRESS, step=0)
    tables = codec_tables(codec, kernel_device)
    args = (codec, head_dim, 2, False, True)
    counts = new_counters(kernel_device)
    got = codec_kernels.triton_decode_dequantize(stored.to(kernel_device), meta.to(kernel_device), *tables, *args, counts, dtype,
                                                 lengths)
    want_counts = new_counters(kernel_device)
    for b, length in enumerate(lengths):
        alone = codec_kernels.triton_decode_dequantize(stored[b].to(kernel_device), meta[b].to(kernel_device), *tables, *args,
                                                       want_counts, dtype, length.to(kernel_device))
        written = min(int(length), seq)  # rows past a length hold whatever the decode makes of them
        assert same_bits(got[b, :, :written].cpu(), alone[:, :written].cpu()), b
    assert torch.equal(counts.cpu(), want_counts.cpu())
    if codec != "int4":  # faults were decoded; where the code detects, interpolation had erasures to fill
        assert int(want_counts[COUNTER_NAMES.index("corrected")]) > 0
        assert codec == "hamming74" or int(want_counts[COUNTER_NAMES.index("detected")]) > 0
    with pytest.raises(ValueError, match="a length per sequence"):
        codec_kernels.triton_decode_dequantize(stored.to(kernel_device), meta.to(kernel_device), *tables, *args, counts, dtype,
                                               lengths[:2].to(kernel_device))


@pytest.mark.parametrize("codec", ["hamming84", "golay24", "secded72"])
def test_decode_dequantize_reads_metadata_viewed_off_a_word(codec, kernel_device):
    """One scale a row: the metadata in Golay's lane layout, which the kernel reads as 32-bit
    words, viewed from a byte buffer at an odd offset (the launcher copies such a view; on the
    GPU the word loads would be misaligned, the interpreter reads any address)."""
    head_dim = 32 if codec != "secded72" else 64
    x = torch.randn(2, 3, 9, head_dim, generator=torch.Generator().manual_seed(1))
    stored, meta = reference_store(x, codec, None, True)
    assert MetadataLayout(codec).storage.lanes
    off_a_word = torch.zeros(meta.numel() + 1, dtype=torch.uint8, device=kernel_device)[1:].view(meta.shape).copy_(meta)
    assert off_a_word.storage_offset() % 4 == 1
    calls = [codec_kernels.triton_decode_dequantize(stored.to(kernel_device), m, *codec_tables(codec, kernel_device), codec, head_dim,
                                                    1, True, False, new_counters(kernel_device), torch.float32, None)
             for m in (meta.to(kernel_device), off_a_word)]
    assert torch.equal(calls[0], calls[1])


@pytest.mark.parametrize("codec", [c for c in CODEC_NAMES if c != "int4"])
@pytest.mark.parametrize("dtype,ber", [(torch.float32, 0.05), (torch.bfloat16, 0.05), (torch.float16, 2e-3)])
def test_decode_dequantize_interpolates_across_tiles(codec, dtype, ber, kernel_device):
    """The interpolation kernel works on tiles of 32 rows: 80 rows, a run of 40 erased in a
    channel (all its codewords' bits flipped), groups and unwritten rows at the end. Into
    bfloat16 or float16 it takes the neighbours from the INT4 values and scales the decode
    kept, in rows with a codeword not clean; at the lower error rate most neighbours' rows are
    clean, and their values come from the codewords as stored."""
    head_dim, group_size, rows, written = 16, 8, 80, 75
    x = torch.randn(2, 1, rows, head_dim, generator=torch.Generator().manual_seed(5))
    stored, meta = reference_store(x, codec, group_size, True)
    layout, meta_layout = StorageLayout(codec, head_dim), MetadataLayout(codec, head_dim // group_size, True)
    noisy, _ = FaultModel("bsc", ber, seed=9).apply(stored, layout.exposed_bits_per_byte, step=0)
    noisy[0, 0, 20:60, 0] ^= 0x03  # two flips in the first byte of 40 rows: detected in both SECDED codes
    noisy_meta, _ = FaultModel("bsc", 0.05, seed=9).apply(meta, meta_layout.exposed_bits_per_byte, offset=METADATA_ADDRESS, step=0)
    length, groups = torch.tensor(written), meta_layout.groups
    args = (codec, head_dim, groups, True, True)
    counters = new_counters()
    want = torch.ops.ecc.decode_dequantize(noisy, noisy_meta, *codec_tables(codec, "cpu"), *args, counters, dtype, length)
    got = codec_kernels.triton_decode_dequantize(
        noisy.to(kernel_device), noisy_meta.to(kernel_device), *codec_tables(codec, kernel_device), *args,
        new_counters(kernel_device), dtype, length.to(kernel_device))
    assert got.dtype == dtype and same_bits(got.cpu(), want)
    detected, meta_detected = (int(counters[COUNTER_NAMES.index(name)]) for name in ("detected", "meta_detected"))
    # Hamming(7,4) corrects every pattern, and Golay the injected double flips: at the lower
    # rate their erasures are the scales' (groups).
    assert meta_detected > 0 and (detected > 0 or codec == "hamming74" or (codec == "golay24" and ber < 0.05))


@pytest.mark.parametrize("codec", CODEC_NAMES)
@pytest.mark.parametrize("groups", [1, 4, 3])
@pytest.mark.parametrize("symmetric", [True, False])
def test_quantize_encode_kernel_at_head_dim_128(codec, groups, symmetric, kernel_device):
    """The caches' shape, head_dim 128 in 1 or 4 groups: whole power-of-two rows quantized in
    registers (``codec_kernels.whole_rows``); and 3 groups of 32 values (head_dim 96), a padded
    tile of groups, which takes the general path."""
    head_dim = 128 if groups != 3 else 96
    x = torch.randn(37, head_dim, generator=torch.Generator().manual_seed(groups)) * 2
    x[0, :32] = 0.0  # a zero group where a group is 32 values
    encode_table, _, meta_encode_table, _ = codec_tables(codec, kernel_device)
    got = codec_kernels.triton_quantize_encode(x.to(kernel_device), encode_table, meta_encode_table, codec, head_dim // groups, symmetric)
    want = reference_store(x, codec, head_dim // groups, symmetric)
    for a, b in zip(got, want):
        assert torch.equal(a.cpu(), b)


@pytest.mark.parametrize("codec", CODEC_NAMES)
@pytest.mark.parametrize("groups", [1, 4])
def test_decode_dequantize_kernel_at_head_dim_128(codec, groups, kernel_device):
    """The shape the caches use: whole power-of-two rows, every value stored in row order
    (``codec_kernels.row_order``) or slot by slot (Golay's lanes), faults in values and scales."""
    head_dim = 128
    x = torch.randn(2, 1, 6, head_dim, generator=torch.Generator().manual_seed(7))
    stored, meta = reference_store(x, codec, head_dim // groups, True)
    meta_layout = MetadataLayout(codec, groups, True)
    fault = FaultModel("bsc", 0.02, seed=5)
    noisy, _ = fault.apply(stored, StorageLayout(codec, head_dim).exposed_bits_per_byte, step=0)
    noisy_meta, _ = fault.apply(meta, meta_layout.exposed_bits_per_byte, offset=METADATA_ADDRESS, step=0)
    args = (codec, head_dim, groups, True, False)
    c_ref, c_ker = new_counters(), new_counters(kernel_device)
    want = torch.ops.ecc.decode_dequantize(noisy, noisy_meta, *codec_tables(codec, "cpu"), *args, c_ref, torch.float16)
    got = codec_kernels.triton_decode_dequantize(noisy.to(kernel_device), noisy_meta.to(kernel_device),
                                                 *codec_tables(codec, kernel_device), *args, c_ker, torch.float16)
    assert same_bits(got.cpu(), want) and torch.equal(c_ker.cpu(), c_ref)


@settings(max_examples=6, deadline=None)
@given(codec=st.sampled_from(["int4", "hamming84", "secded72"]), seq=st.integers(1, 70), batch_heads=st.integers(1, 9),
       written=st.integers(0, 75), interpolate=st.booleans())
@example(codec="int4", seq=37, batch_heads=9, written=20, interpolate=False)  # programs of 256 rows: ranges end mid-sequence
@example(codec="hamming84", seq=45, batch_heads=3, written=50, interpolate=True)  # 64 rows; a length past the sequence's
def test_read_kernel_counts_each_program_rows_from_its_range(codec, seq, batch_heads, written, interpolate):
    """The load kernel's counts come from each program's row range in scalar arithmetic
    (``_rows_counted``), not from its tile: over many programs of whole-word rows (head_dim 64),
    whose row ranges start and end inside sequences, and a written length below, at or past
    the sequence's, they equal the reference's, and so do the values."""
    head_dim = 64
    kernel_device = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.randn(batch_heads, seq, head_dim, generator=torch.Generator().manual_seed(seq))
    stored, meta = reference_store(x, codec)
    noisy, _ = FaultModel("bsc", 0.01, seed=seq).apply(stored, StorageLayout(codec, head_dim).exposed_bits_per_byte, step=0)
    length = torch.tensor(written)
    c_ref, c_ker = new_counters(), new_counters(kernel_device)
    want = torch.ops.ecc.decode_dequantize(noisy, meta, *codec_tables(codec, "cpu"), codec, head_dim, 1, True, interpolate, c_ref,
                                           torch.float16, length)
    got = codec_kernels.triton_decode_dequantize(noisy.to(kernel_device), meta.to(kernel_device), *codec_tables(codec, kernel_device),
                                                 codec, head_dim, 1, True, interpolate, c_ker, torch.float16, length.to(kernel_device))
    assert same_bits(got.cpu(), want)
    assert torch.equal(c_ker.cpu(), c_ref)


def test_the_codec_kernels_move_int4_and_secded72_rows_whole_on_hopper(run_compile_tool):
    """Compiled for sm_90a (no GPU needed; a subprocess, since this session runs Triton's
    interpreter), the encode kernel reads int4's and SECDED(72,64)'s values once, as whole rows,
    and the decode kernel writes them so, not one value per unit at a time (``_quantized_rows``,
    ``_row_units``, ``_row_values``): those single-value accesses made int4's decode run at 2%
    of a device copy on the H200 (``tools/codec_kernel_memory.py``). int4's rows are read as
    words, not single bytes (``nibble_words``)."""
    result = run_compile_tool("codec_kernel_memory.py", "--codecs", "int4", "secded72", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = {tuple(line.split()[:2]): line for line in result.stdout.splitlines()}
    assert set(lines) == {(c, k) for c in ("int4", "secded72") for k in ("store", "load")}, result.stdout
    for (codec, kernel), line in lines.items():
        loads, stores = (dict(re.findall(r"\.(\w+)=(\d+)", part)) for part in line.split("STG"))
        if kernel == "store":  # float16 rows read once, in 16-byte loads; no scale gathered back (``WHOLE_ROWS``)
            assert set(loads) == {"128"}, line
        else:  # at most one single-byte store: SECDED(72,64)'s status byte per codeword
            assert int(stores.get("128", 0)) >= 4 and int(stores.get("U8", 0)) <= 1, line
            if codec == "int4":
                assert "U8" not in loads, line


def test_int4_decode_kernel_takes_few_instructions_per_value_on_hopper(run_compile_tool):
    """int4's decode kernel, compiled for sm_90a (``tools/codec_sass.py``): its rows read as words
    and its counts made without reductions, it takes about 9 SASS instructions a value and
    thread (Triton 3.6 and 3.9); read as bytes and counted over the tile, 18."""
    result = run_compile_tool("codec_sass.py", "--codecs", "int4", "--kernels", "load", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    per_value = float(re.search(r"([\d.]+) per value and thread", result.stdout).group(1))
    assert per_value < 12, result.stdout


def test_grouped_decode_kernel_decodes_the_metadata_once_on_hopper(run_compile_tool):
    """Golay's decode kernel over four groups with zero points, compiled for sm_90a
    (``tools/codec_sass.py``): each group's scale and zero point come from the row's metadata
    codewords, loaded and decoded once a tile. Read and decoded value by value in each of its
    passes, the kernel held 244 loads, spilled 30 KB a thread and took 90 s to compile (Triton
    3.6; now 20 loads and 4 s, 136 bytes spilled under the launch's register cap of 64)."""
    result = run_compile_tool("codec_sass.py", "--codecs", "golay24", "--kernels", "load", "--groups", "4", "--asymmetric", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(re.search(r"(\d+) loads", result.stdout).group(1)) <= 24, result.stdout


def test_hamming_and_golay_reads_compile_under_their_register_caps_on_hopper(run_compile_tool):
    """The dequantizing reads of Hamming(8,4) and Golay, compiled for sm_90a as launched
    (``tools/codec_sass.py``): within their register caps (``codec_kernels.register_cap``, 80 and
    64). Uncapped, the rare dirty tile's decode held 122 and 94 registers a thread, and so few
    programs an SM that the clean read, bound by bytes, ran 1.1-1.2x slower."""
    result = run_compile_tool("codec_sass.py", "--codecs", "hamming84", "golay24", "--kernels", "load", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    used = {line.split()[0]: int(re.search(r"Used (\d+) registers", line).group(1)) for line in result.stdout.splitlines()}
    assert used["hamming84"] <= 80 and used["golay24"] <= 64, result.stdout


@pytest.mark.parametrize("kind", ["bsc", "msb", "page"])
@pytest.mark.parametrize("bits,dtype", [(7, torch.uint8), (8, torch.uint8), (16, torch.int16)])
@pytest.mark.parametrize("narrowed", [False, True])
@pytest.mark.parametrize("offset,seed", [(123_456, 2**40 + 17), (METADATA_ADDRESS + 2**31 + 5, 2**63 - 3)])
def test_inject_kernel_draws_the_reference_flips(kind, bits, dtype, narrowed, offset, seed, kernel_device):
    """Also at the metadata's addresses (past 2^39) and a seed near 2^63, which reach the kernel
    in 31-bit pieces."""
    words = torch.randint(0, 1 << min(bits, 15), (1000, 3)).to(dtype)
    model = FaultModel(kind, 0.02, seed=seed, page_words=64, page_fraction=0.25, msb_bits=2)
    eligible = torch.tensor([0x88, 0x08, 0x4001]) if narrowed else None  # msb's bits per word position
    assert fault_kernels.supports(model, bits)
    got, n_got = fault_kernels.triton_inject(words.to(kernel_device), bits, model, offset=offset, step=7, eligible=eligible)
    want, n_want = model.apply(words, bits, offset=offset, step=7, eligible=eligible)
    assert torch.equal(got.cpu(), want) and int(n_got) == int(n_want) > 0


def test_int31_pieces():
    for x in (0, 1, 2**31 - 1, 2**31, METADATA_ADDRESS + 12_345, 2**63 - 1):
        pieces = fault_kernels.int31_pieces(x, 3)
        assert all(0 <= p < 2**31 for p in pieces) and sum(p << (31 * i) for i, p in enumerate(pieces)) == x
    with pytest.raises(ValueError):
        fault_kernels.int31_pieces(2**62, 2)


def test_nibble_parity_table_is_made_once_per_encode_table():
    """The launchers' per-nibble table is each codeword of ``v << 4j``, kept for the next call
    with the same table, made again when the table changes, and not kept while compiling (a
    traced table belongs to the trace)."""
    encode = get_codec("golay24").tables("cpu").encode_table.clone()
    table = codec_kernels.nibble_parity_table(encode, 12)
    assert torch.equal(table, encode[torch.tensor([v << (4 * j) for j in range(3) for v in range(16)])])
    assert codec_kernels.nibble_parity_table(encode, 12) is table
    encode[16] ^= 1  # the codeword of 1 << 4
    assert int(codec_kernels.nibble_parity_table(encode, 12)[17]) == int(table[17]) ^ 1
    compiled = torch.compile(lambda t: codec_kernels.nibble_parity_table(t, 12) + 0, backend="eager", fullgraph=True)
    fresh = encode.clone()
    assert torch.equal(compiled(fresh), codec_kernels.nibble_parity_table(encode, 12))
    assert fresh not in codec_kernels._NIBBLE_TABLES


def test_a_kept_nibble_parity_table_is_read_while_a_cuda_graph_records(aten_calls):
    """Recording a CUDA graph (an opaque op's call under mode="reduce-overhead") reads the table
    kept from the warm-up, launching nothing; one made while recording belongs to that graph's
    pool, so it is not kept. A table replaced after its encode table changed stays alive, since
    a recorded graph may still read it."""
    encode = get_codec("golay24").tables("cpu").encode_table.clone()
    kept = codec_kernels.nibble_parity_table(encode, 12)  # the warm-up, outside the graph
    fresh = encode.clone()
    with mock.patch.object(codec_kernels, "_capturing", lambda t: True):
        with aten_calls() as recorded:
            assert codec_kernels.nibble_parity_table(encode, 12) is kept
        assert recorded.ops == []
        made = codec_kernels.nibble_parity_table(fresh, 12)
        assert torch.equal(made, kept) and fresh not in codec_kernels._NIBBLE_TABLES
    encode[16] ^= 1
    assert codec_kernels.nibble_parity_table(encode, 12) is not kept and any(t is kept for t in codec_kernels._REPLACED_NIBBLE_TABLES)


def test_inject_kernel_probability_one(kernel_device):
    model = FaultModel("bsc", 1.0, seed=1)
    words = torch.randint(0, 256, (100,), dtype=torch.uint8)
    got, n = fault_kernels.triton_inject(words.to(kernel_device), 8, model, 0, 0)
    assert torch.equal(got.cpu(), ~words) and int(n) == 800


@triton.jit
def _bf16_kernel(x_ptr, out_ptr, N: tl.constexpr):
    i = tl.arange(0, N)
    tl.store(out_ptr + i, float_casts._to_bf16_rne(tl.load(x_ptr + i)))


def test_bfloat16_rounding_is_pytorchs_for_every_float_class(kernel_device):
    """Ties, overflow to inf, subnormals and NaNs of every payload (a corrupted scale can
    make one): rounded by bits, 0x7FFFFFFF would carry into the sign bit and read as -0."""
    bits = torch.tensor([0x7FFFFFFF, 0xFFFFFFFF, 0x7F800001, 0x7FC00000, 0x7F800000, 0x7F7FFFFF, 0x3F808000, 0x3F818000,
                         0x00000001, 0x80000000, 0x3EAAAAAB], dtype=torch.int64)
    x = torch.where(bits >= 1 << 31, bits - (1 << 32), bits).to(torch.int32).view(torch.float32)
    x = torch.cat([x, torch.randn(5, generator=torch.Generator().manual_seed(0)) * 1e30]).contiguous()
    n = triton.next_power_of_2(x.numel())
    padded = torch.cat([x, torch.zeros(n - x.numel())]).to(kernel_device)
    out = torch.empty(n, dtype=torch.bfloat16, device=kernel_device)
    _bf16_kernel[(1,)](padded, out, N=n)
    assert same_bits(out.cpu()[: x.numel()], x.to(torch.bfloat16))
    assert out.cpu()[:4].isnan().all()  # NaNs of every payload stay NaN (PyTorch's own payload varies by device)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit for bit, a NaN matching any NaN: PyTorch's casts give NaNs different payloads on
    different devices, and a corrupted (unprotected) scale can make NaNs."""
    ints = {2: torch.int16, 4: torch.int32}[a.dtype.itemsize]
    nan = a.isnan()
    return torch.equal(nan, b.isnan()) and torch.equal(a.view(ints)[~nan], b.view(ints)[~nan])


def _interpolated_half_read_matches_the_reference(noisy, meta, codec, head_dim, kernel_device):
    """``decode_dequantize`` with interpolation into float16, one scale a row: asserts the
    kernel's bits and counts are the reference's; returns the reference's output and counters."""
    args = (codec, head_dim, 1, True, True)
    c_ref, c_ker = new_counters(), new_counters(kernel_device)
    want = torch.ops.ecc.decode_dequantize(noisy, meta, *codec_tables(codec, "cpu"), *args, c_ref, torch.float16)
    got = codec_kernels.triton_decode_dequantize(noisy.to(kernel_device), meta.to(kernel_device), *codec_tables(codec, kernel_device),
                                                 *args, c_ker, torch.float16)
    assert same_bits(got.cpu(), want) and torch.equal(c_ker.cpu(), c_ref)
    return want, c_ref


@pytest.mark.parametrize("codec,flip", [("hamming84", 0x03), ("golay24", 0x0F), ("secded72", 0x03)])
def test_interpolation_reads_clean_rows_from_the_codewords_at_head_dim_128(codec, flip, kernel_device):
    """The caches' head_dim, float16: one codeword detected (two flipped bits of a SECDED
    codeword, four of one Golay value) in a row whose neighbours are clean, one corrected two
    rows on. The decode keeps INT4 values only in rows with a codeword not clean; the erased
    values' neighbours in clean rows are read from the codewords' data bits, as the word paths
    leave them. Bits and counts as the reference."""
    head_dim = 128
    x = torch.randn(2, 40, head_dim, generator=torch.Generator().manual_seed(4))
    stored, meta = reference_store(x, codec)
    noisy = stored.clone()
    noisy[1, 20, 9] ^= flip  # detected: interpolated from rows 19 and 21
    noisy[1, 22, 5] ^= 0x01  # corrected: its row's decoded values kept
    noisy[0, 21, 3] ^= flip  # detected next to a row with a correction... in the other sequence
    noisy[0, 20, 3] ^= 0x10
    want, c_ref = _interpolated_half_read_matches_the_reference(noisy, meta, codec, head_dim, kernel_device)
    assert int(c_ref[COUNTER_NAMES.index("detected")]) == 2 and int(c_ref[COUNTER_NAMES.index("corrected")]) == 2
    assert not same_bits(want, torch.ops.ecc.decode_dequantize(noisy, meta, *codec_tables(codec, "cpu"), codec, head_dim, 1, True,
                                                               False, new_counters(), torch.float16))  # interpolation changed values


@pytest.mark.parametrize("codec,flip", [("hamming84", 0x03), ("golay24", 0x0F), ("secded72", 0x03)])
def test_interpolation_takes_a_neighbour_from_a_clean_tile_at_head_dim_128(codec, flip, kernel_device):
    """The decode checks its tiles of rows (16 or 32 at head_dim 128) whole and records nothing
    of a clean one (no statuses, no kept values, zero row flags, the read count alone): a value
    erased in a tile's last row takes its next neighbour from the following clean tile, read
    from the codewords. Bits and counts as the reference."""
    head_dim = 128
    x = torch.randn(1, 96, head_dim, generator=torch.Generator().manual_seed(6))
    stored, meta = reference_store(x, codec)
    noisy = stored.clone()
    noisy[0, 31, 9] ^= flip  # detected, in the last row of a tile; rows 32-95 clean
    noisy[0, 29, 40] ^= 0x01  # corrected, two rows before
    _, c_ref = _interpolated_half_read_matches_the_reference(noisy, meta, codec, head_dim, kernel_device)
    assert int(c_ref[COUNTER_NAMES.index("detected")]) == 1 and int(c_ref[COUNTER_NAMES.index("corrected")]) == 1


@pytest.mark.parametrize("codec", ["golay24", "hamming74", "hamming84"])
@pytest.mark.parametrize("dequantize", [False, True])
def test_decode_of_clean_and_dirty_tiles_at_head_dim_128(codec, dequantize, kernel_device):
    """Rows read as words (``codec_kernels.lane_words``, ``byte_words``, and the scales'
    ``meta_row_words``): a tile whose codewords are all clean is stored from its data words
    without decoding a codeword, a tile holding an error is decoded codeword by codeword;
    values, statuses and counts as the reference."""
    head_dim = 128
    x = torch.randn(3 * 16 + 5, head_dim, generator=torch.Generator().manual_seed(3))
    stored, meta = reference_store(x, codec)
    noisy = stored.clone()
    noisy[20, 7] ^= 0x10  # one bit, in the second tile (Golay's 16 rows, Hamming's 32)
    noisy[40, 70] ^= 0x03  # two bits of one nibble (one codeword), in the third (Hamming's second)
    tables_ = codec_tables(codec, kernel_device)
    if dequantize:
        args = (codec, head_dim, 1, True, False)
        meta = meta.clone()
        meta[45, 3] ^= 0x04  # an exponent bit of one row's scale, in the third tile (Hamming's second)
        c_ref, c_ker = new_counters(), new_counters(kernel_device)
        want = torch.ops.ecc.decode_dequantize(noisy, meta, *codec_tables(codec, "cpu"), *args, c_ref, torch.float16)
        got = codec_kernels.triton_decode_dequantize(noisy.to(kernel_device), meta.to(kernel_device), *tables_, *args, c_ker,
                                                     torch.float16)
        assert same_bits(got.cpu(), want) and torch.equal(c_ker.cpu(), c_ref)
        assert sum(int(c_ker[COUNTER_NAMES.index(name)]) for name in ("corrected", "detected")) == 2
        assert int(c_ker[COUNTER_NAMES.index("meta_corrected")]) == 1
    else:
        v_k, s_k = codec_kernels.triton_decode(noisy.to(kernel_device), tables_[0], tables_[1], codec, head_dim)
        v_r, s_r = StorageLayout(codec, head_dim).load(noisy)
        assert torch.equal(v_k.cpu(), v_r) and torch.equal(s_k.cpu(), s_r)
        assert int((s_r != 0).sum()) == 2


def test_inductors_copies_of_the_kernels_resolve_every_global(run_compile_tool):
    """torch.compile's Inductor compiles a user-defined kernel from a copy of its source and of
    the Triton functions it calls, with their int, str, bool and constexpr globals only: Golay's
    B (a tuple) was undefined in the copy of ``ops/lane_words.py``, and the compile failed, on
    the GPU only. ``tools/inductor_kernel_globals.py`` checks every kernel's copy (a subprocess:
    interpreted kernels have no source to copy)."""
    result = run_compile_tool("inductor_kernel_globals.py", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "_store_kernel" in result.stdout and "_decode_attention_kernel" in result.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CPU machine's check: on a GPU every launch compiles for real, and the GPU "
                    "machine's torch 2.11 and Triton 3.6 cannot record launches in the interpreter")
def test_every_launch_a_cache_makes_compiles_for_hopper(run_compile_tool):
    """The interpreter neither type-checks nor lowers a kernel, so a launch that only the GPU
    compiler rejects passes every other CPU test: Golay's store kernel at head_dim 32 read a
    scale through the uint8 pointer it is handed when it writes the scales itself (statements
    after a constexpr branch that returned are compiled too). ``tools/compile_cache_launches.py``
    records every launch of a tiny model's prefill and decoding steps through ``ECCCache``
    (both attentions, both key axes, faults on the whole footprint) and compiles each for
    sm_90a. Head_dim 32 in bfloat16 (the GPU tests and ``kernel_resources.py`` cover 128), the
    modes whose kernels differ most: Golay's lanes, Hamming's bytes with interpolation,
    SECDED's blocks; keys per token and per channel (zero points: 12 minutes on two cores,
    the tool's default run has them)."""
    result = run_compile_tool("compile_cache_launches.py", "--modes", "int12-golay", "int4-hamming84-interp", "int4-secded72-interp",
                              "--head-dims", "32", "--dtypes", "bfloat16", "--options", "token", "channel", "--jobs", "2", timeout=900)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    compiled = re.search(r"(\d+) compiled, 0 failed", result.stdout)
    assert compiled and int(compiled.group(1)) >= 40, result.stdout[-3000:]
