"""Reference codecs: exhaustive error patterns, matrix identities, properties, bad input."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ecc_tensor.codecs import (
    CODEC_NAMES,
    GOLAY_B,
    STATUS_CLEAN,
    STATUS_CORRECTED,
    STATUS_DETECTED,
    get_codec,
    gf2_matmul,
    int_to_bits,
)

ECC_NAMES = ("hamming74", "hamming84", "golay24")
NIBBLES = torch.arange(16, dtype=torch.uint8)


def patterns(n: int, weight: int) -> torch.Tensor:
    """All n-bit integers of the given Hamming weight (int64)."""
    return torch.tensor([sum(1 << i for i in pos) for pos in itertools.combinations(range(n), weight)], dtype=torch.int64)


def flip(codewords: torch.Tensor, errors: torch.Tensor) -> torch.Tensor:
    """Every codeword XOR every error pattern: ``[len(codewords), len(errors)]``."""
    return (codewords.to(torch.int64)[:, None] ^ errors[None, :]).to(codewords.dtype)


# -- the contract's conventions -----------------------------------------------------------
def test_parameters():
    assert [(get_codec(n).n, get_codec(n).k, get_codec(n).values_per_codeword) for n in ECC_NAMES] == [
        (7, 4, 1),
        (8, 4, 1),
        (24, 12, 3),
    ]
    assert get_codec("hamming84").word_dtype == torch.uint8
    assert get_codec("golay24").word_dtype == torch.int32


def test_paper_example_2():
    cw = get_codec("hamming74").encode(2)
    assert int(cw) == 82
    assert int_to_bits(cw, 7).tolist() == [0, 1, 0, 0, 1, 0, 1]


def test_hamming74_generator_is_eq17():
    assert get_codec("hamming74").generator.tolist() == [
        [1, 0, 0, 0, 1, 1, 0],
        [0, 1, 0, 0, 1, 0, 1],
        [0, 0, 1, 0, 0, 1, 1],
        [0, 0, 0, 1, 1, 1, 1],
    ]


def test_hamming84_bit7_is_overall_parity():
    cw = get_codec("hamming84").encode(NIBBLES)
    bits = int_to_bits(cw, 8)
    assert torch.equal(bits[:, 7], bits[:, :7].sum(-1) % 2)
    assert torch.equal(cw & 0x7F, get_codec("hamming74").encode(NIBBLES))


@pytest.mark.parametrize("name", ECC_NAMES + ("int4",))
def test_data_sits_in_low_bits(name):
    codec = get_codec(name)
    values = torch.randint(0, 16, (60,), dtype=torch.uint8)
    cw = codec.encode(values)
    assert torch.equal(codec.unpack_values(cw.to(torch.int64) & ((1 << codec.k) - 1)), values)


def test_golay_packs_three_values_low_first():
    cw = get_codec("golay24").encode(torch.tensor([0x1, 0x2, 0x3], dtype=torch.uint8))
    assert int(cw) & 0xFFF == 0x321


# -- matrix identities --------------------------------------------------------------------
@pytest.mark.parametrize("name", ECC_NAMES)
def test_generator_times_parity_check_is_zero(name):
    codec = get_codec(name)
    assert not gf2_matmul(codec.generator, codec.parity_check.T).any()


def test_golay_b_is_self_inverse():
    b = torch.tensor(GOLAY_B)
    assert torch.equal(gf2_matmul(b, b.T), torch.eye(12, dtype=torch.int64))
    assert torch.equal(get_codec("golay24").generator[:, 12:], b)


@pytest.mark.parametrize("name,distance", [("hamming74", 3), ("hamming84", 4), ("golay24", 8), ("int4", 1)])
def test_minimum_distance(name, distance):
    assert get_codec(name).minimum_distance == distance


@pytest.mark.parametrize("name", ECC_NAMES)
def test_table_syndrome_equals_matrix_syndrome(name):
    """Decoding's table syndrome and ``r . H^T`` agree: status is clean exactly when r . H^T = 0."""
    codec = get_codec(name)
    received = torch.randint(0, 1 << codec.n, (4096,), dtype=torch.int64)
    if codec.n <= 8:
        received = torch.arange(1 << codec.n)
    received = received.to(codec.word_dtype)
    _, status = codec.decode(received)
    assert torch.equal(status == STATUS_CLEAN, codec.syndrome(received) == 0)


# -- exhaustive error patterns ------------------------------------------------------------
@pytest.mark.parametrize("name", ["hamming74", "hamming84"])
def test_hamming_corrects_every_single_error_of_every_nibble(name):
    codec = get_codec(name)
    received = flip(codec.encode(NIBBLES), patterns(codec.n, 1))
    values, status = codec.decode(received)
    assert torch.equal(values, NIBBLES[:, None].expand_as(values))
    assert (status == STATUS_CORRECTED).all()


def test_hamming84_detects_every_double_error_of_every_nibble():
    codec = get_codec("hamming84")
    received = flip(codec.encode(NIBBLES), patterns(8, 2))
    assert received.shape == (16, 28)
    _, status = codec.decode(received)
    assert (status == STATUS_DETECTED).all()


def test_hamming74_miscorrects_every_double_error():
    """Documented limitation: SEC cannot tell a double error from a single one, so it
    'corrects' to the wrong codeword and reports success: a silent corruption."""
    codec = get_codec("hamming74")
    received = flip(codec.encode(NIBBLES), patterns(7, 2))
    values, status = codec.decode(received)
    assert (status == STATUS_CORRECTED).all()
    assert (values != NIBBLES[:, None]).all()


def test_hamming84_follows_the_papers_syndrome_parity_table():
    """All 256 received bytes decoded by the paper's (syndrome, overall parity) rules."""
    codec, h74 = get_codec("hamming84"), get_codec("hamming74")
    received = torch.arange(256).to(torch.uint8)
    values, status = codec.decode(received)
    for r in range(256):
        low7, overall = r & 0x7F, bin(r).count("1") % 2
        s = int(h74.syndrome(torch.tensor(low7)))
        if s == 0 and overall == 0:
            expect = (r & 0xF, STATUS_CLEAN)
        elif s != 0 and overall == 1:
            fixed, _ = h74.decode(torch.tensor(low7, dtype=torch.uint8))
            expect = (int(fixed), STATUS_CORRECTED)
        elif s != 0 and overall == 0:
            expect = (r & 0xF, STATUS_DETECTED)
        else:  # only the parity bit flipped: data valid, counted as corrected
            expect = (r & 0xF, STATUS_CORRECTED)
        assert (int(values[r]), int(status[r])) == expect, r


@pytest.fixture(scope="module")
def golay_data():
    g = torch.Generator().manual_seed(7)
    return torch.randint(0, 16, (8, 3), dtype=torch.uint8, generator=g)


@pytest.mark.parametrize("weight", [1, 2, 3])
def test_golay_corrects_every_pattern_up_to_weight_3(golay_data, weight):
    codec = get_codec("golay24")
    errors = patterns(24, weight)
    received = flip(codec.encode(golay_data).squeeze(-1), errors)
    values, status = codec.decode(received)
    assert (status == STATUS_CORRECTED).all()
    assert torch.equal(values.reshape(8, -1, 3), golay_data[:, None, :].expand(8, errors.numel(), 3))


def test_golay_has_2325_coset_leaders():
    table = get_codec("golay24").tables().syndrome_table
    assert int((table >= 0).sum()) == 1 + 24 + 276 + 2024 == 2325


def test_golay_flags_every_weight_4_pattern(golay_data):
    codec = get_codec("golay24")
    errors = patterns(24, 4)
    assert errors.numel() == 10626
    received = flip(codec.encode(golay_data).squeeze(-1), errors)
    _, status = codec.decode(received)
    assert (status == STATUS_DETECTED).all()


@pytest.mark.parametrize("name", ECC_NAMES)
def test_decoder_is_bounded_distance_decoding(name):
    """Against brute force over all codewords: within distance t of a codeword -> that
    codeword's data; otherwise detected (Hamming exhaustively, Golay on random words)."""
    codec = get_codec(name)
    all_cw = codec.tables().encode_table
    if codec.n <= 8:
        received = torch.arange(1 << codec.n)
    else:
        received = torch.randint(0, 1 << 24, (3000,), generator=torch.Generator().manual_seed(3))
    dist = int_to_bits(received[:, None] ^ all_cw[None, :], codec.n).sum(-1)
    best_dist, best = dist.min(-1)
    values, status = codec.decode(received.to(codec.word_dtype))
    within = best_dist <= codec.correctable_weight
    assert torch.equal(status == STATUS_DETECTED, ~within)
    assert torch.equal(codec.pack_values(values)[within], best[within])


@pytest.mark.parametrize("name,radius", [("hamming74", 0), ("hamming84", 0), ("golay24", 0), ("golay24", 1), ("golay24", 2)])
def test_a_smaller_correction_radius_corrects_up_to_it_and_detects_up_to_the_distance_left(name, radius, golay_data):
    """Bounded-distance decoding at ``radius`` below t (``tables(correction_radius=...)``, as
    the -interp modes read their scales): every pattern of at most ``radius`` flips corrected,
    every one of ``radius + 1`` to ``d - 1 - radius`` flips detected, none silent; the
    encode table is the full code's."""
    codec = get_codec(name)
    tables = codec.tables(correction_radius=radius)
    assert tables.encode_table is codec.tables().encode_table
    data = golay_data if codec.values_per_codeword == 3 else NIBBLES[:, None]
    codewords = codec.encode(data).squeeze(-1)
    for weight in range(codec.minimum_distance - radius):
        received = flip(codewords, patterns(codec.n, weight))
        values, status = codec.decode(received, tables=tables)
        if weight == 0:
            assert (status == STATUS_CLEAN).all()
        elif weight <= radius:
            assert (status == STATUS_CORRECTED).all()
        else:
            assert (status == STATUS_DETECTED).all(), (weight, int((status != STATUS_DETECTED).sum()))
        if weight <= radius:
            assert torch.equal(values.reshape(len(data), -1, data.shape[-1]), data[:, None, :].expand(len(data), received.shape[1], -1))
    assert int((tables.syndrome_table >= 0).sum()) == sum(len(patterns(codec.n, w)) for w in range(radius + 1))
    with pytest.raises(ValueError, match="correction_radius"):
        codec.tables(correction_radius=codec.correctable_weight + 1)


def test_golay_never_raises_on_any_24_bit_word():
    codec = get_codec("golay24")
    words = torch.arange(0, 1 << 24, 997, dtype=torch.int32)
    values, status = codec.decode(words)
    assert values.shape == (words.numel() * 3,) and status.max() <= STATUS_DETECTED


def test_int4_codec_is_the_identity_and_never_corrects():
    codec = get_codec("int4")
    values, status = codec.decode(codec.encode(NIBBLES) ^ 1)
    assert torch.equal(values, NIBBLES ^ 1)
    assert not status.any()


# -- hypothesis properties ----------------------------------------------------------------
shapes = st.lists(st.integers(1, 5), min_size=1, max_size=3)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(CODEC_NAMES), shape=shapes, seed=st.integers(0, 2**31))
def test_roundtrip_any_shape_and_values(name, shape, seed):
    codec = get_codec(name)
    shape[-1] *= codec.values_per_codeword
    values = torch.randint(0, 16, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    cw = codec.encode(values)
    assert cw.shape == (*shape[:-1], shape[-1] // codec.values_per_codeword, *codec.codeword_shape) and cw.dtype == codec.word_dtype
    decoded, status = codec.decode(cw)
    assert torch.equal(decoded, values) and not status.any()


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(ECC_NAMES), data=st.data())
def test_any_error_within_capacity_is_corrected(name, data):
    codec = get_codec(name)
    count = data.draw(st.integers(1, 12))
    values = torch.tensor(data.draw(st.lists(st.integers(0, 15), min_size=count * codec.values_per_codeword,
                                             max_size=count * codec.values_per_codeword)), dtype=torch.uint8)
    errors = torch.tensor(
        [
            sum(1 << b for b in data.draw(st.sets(st.integers(0, codec.n - 1), max_size=codec.correctable_weight)))
            for _ in range(count)
        ],
        dtype=torch.int64,
    )
    received = (codec.encode(values).to(torch.int64) ^ errors).to(codec.word_dtype)
    decoded, status = codec.decode(received)
    assert torch.equal(decoded, values)
    assert torch.equal(status, torch.where(errors == 0, STATUS_CLEAN, STATUS_CORRECTED).to(torch.uint8))


# -- bad input ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,values,message",
    [
        ("hamming74", torch.tensor([3, 16], dtype=torch.uint8), r"\[0, 15\]"),
        ("hamming84", 16, r"\[0, 15\]"),
        ("hamming84", -1, r"\[0, 15\]"),
        ("hamming84", torch.tensor([1.0, 2.0]), "uint8"),
        ("hamming84", [0.5], "integers"),
        ("hamming74", torch.tensor([1, 2], dtype=torch.int64), "uint8"),
        ("golay24", torch.zeros(4, dtype=torch.uint8), "multiple of 3"),
        ("golay24", torch.tensor(3, dtype=torch.uint8), "multiple of 3"),
    ],
)
def test_encode_rejects_bad_values(name, values, message):
    with pytest.raises(ValueError, match=message):
        get_codec(name).encode(values)


@pytest.mark.parametrize(
    "name,codewords,message",
    [
        ("hamming84", torch.zeros(3, dtype=torch.int32), "uint8"),
        ("hamming84", torch.zeros(3), "uint8"),
        ("golay24", torch.zeros(3, dtype=torch.uint8), "int32"),
        ("hamming74", torch.tensor([0x80], dtype=torch.uint8), "above bit 6"),
        ("golay24", torch.tensor([1 << 24], dtype=torch.int32), "above bit 23"),
        ("golay24", torch.tensor([-1], dtype=torch.int32), "above bit 23"),
    ],
)
def test_decode_rejects_bad_codewords(name, codewords, message):
    with pytest.raises(ValueError, match=message):
        get_codec(name).decode(codewords)


@pytest.mark.parametrize("name", ["hamming", "golay", "", None, "HAMMING84"])
def test_unknown_codec_name(name):
    with pytest.raises(ValueError, match="unknown codec"):
        get_codec(name)
