"""The keys-per-channel pass alone (``ops.attention.channel_scales.read_channel_scales``): the
rows of Golay-coded channel scales of a batch of sequences read into float32 words and dirty
flags, timed by CUDA-graph replay over four input copies (``benchmarks/common.py``), with and
without zero points. Prints each case's times and a digest of its output, so that two trees
(``tools/device/ab_tree.sh``) can be compared bit for bit in one call.

    python tools/channel_scales_pass_time.py                          # batch 8 x 8 heads x 32k keys, blocks of 128
    PYTHONPATH=$PWD/.ab/REV:$PYTHONPATH python tools/channel_scales_pass_time.py   # the same for revision REV
    python tools/channel_scales_pass_time.py --rows-per-program 1 2 4                # the pass's rows a program, each timed
    python tools/channel_scales_pass_time.py --cpu --batch 1 --context 256 --iters 1  # the interpreter: a smoke run
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"))
if "--cpu" in sys.argv:  # Triton reads it when first imported
    os.environ.setdefault("TRITON_INTERPRET", "1")

import torch  # noqa: E402
from common import kernel_time  # noqa: E402

from ecc_tensor.codecs import CodecTables  # noqa: E402
from ecc_tensor.metadata import MetadataLayout, codec_tables  # noqa: E402
from ecc_tensor.ops.attention import channel_scales  # noqa: E402
from ecc_tensor.ops.attention.channel_scales import read_channel_scales  # noqa: E402
from ecc_tensor.ops.codec_kernels import nibble_parity_table  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--context", type=int, default=32768)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--channel-block", type=int, default=128, help="keys a row of channel scales covers")
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rows-per-program", type=int, nargs="+", default=[0],
                   help="rows of channel scales a program of the pass reads, each timed (0: as the launcher picks, "
                        "channel_scales.rows_per_program)")
    p.add_argument("--cpu", action="store_true", help="CPU tensors (Triton's interpreter): checks the tool runs")
    args = p.parse_args(argv)
    if args.context % args.channel_block:
        p.error("--context must be a multiple of --channel-block")
    if not args.cpu and not torch.cuda.is_available():
        p.error("no CUDA device: pass --cpu for a smoke run in the interpreter")
    device = torch.device("cpu" if args.cpu else "cuda")
    rows = args.context // args.channel_block
    picked = channel_scales.rows_per_program
    tables = codec_tables("hamming84", "cpu")  # any codec: the scales are Golay-coded for all
    lens = torch.full((args.batch,), args.context, dtype=torch.int64, device=device)
    for symmetric in (True, False):
        layout = MetadataLayout("hamming84", args.head_dim, symmetric)
        g = torch.Generator().manual_seed(0)
        scale = torch.rand(args.batch * args.kv_heads * rows, args.head_dim, generator=g) + 0.01
        zero = None if symmetric else torch.randint(0, 16, scale.shape, generator=g).float()
        meta = layout.store(scale, zero, CodecTables(*tables[2:])).reshape(args.batch, args.kv_heads, rows, -1)
        parity = nibble_parity_table(tables[2], layout.storage.codec.k).to(device)
        metas = [meta.to(device).clone() for _ in range(4)]
        for per_program in args.rows_per_program:
            # read_channel_scales looks the function up at each call: replaced for this run only.
            channel_scales.rows_per_program = picked if per_program == 0 else lambda row_bytes, n=per_program: n
            try:
                outs = [read_channel_scales(m, parity, layout, lens, args.channel_block) for m in metas]
                calls = [lambda m=m, o=o: read_channel_scales(m, parity, layout, lens, args.channel_block, o.view(torch.float32))
                         for m, o in zip(metas, outs)]
                times = [kernel_time(calls, args.iters) * 1e6 for _ in range(args.runs)]
                rows_a_program = channel_scales.rows_per_program(meta.shape[-1])
            finally:
                channel_scales.rows_per_program = picked
            digest = hashlib.sha256(outs[0].cpu().numpy().tobytes()).hexdigest()[:16]
            print(f"{'scales' if symmetric else 'scales and zero points'}: {tuple(meta.shape)} rows of bytes, {rows_a_program} a "
                  f"program, us {' '.join(f'{t:.2f}' for t in times)}, output sha256 {digest}", flush=True)

if __name__ == "__main__":
    main()
