"""The Monte Carlo sweep: cache modes x bit error rates x seeds on a model and a text.

    ecc-tensor sweep --model PATH --text FILE --output-dir results/sweep
    python -m ecc_tensor.sweep ...

Each trial (mode, BER, seed) scores the same sliding windows of the text through an
``ECCCache`` with faults from ``FaultModel(fault_model, ber, seed, site)``. Per trial:
perplexity, KL divergence from the clean fp16 run, top-5 accuracy, catastrophic-failure rate
(see :data:`ecc_tensor.evaluation.windows.CATASTROPHIC_FACTOR`), the cache counters and the
wall time. Finished trials are appended to ``trials.jsonl`` as they end, so a killed sweep
started again with the same settings skips them and loses none.

Under ``torchrun`` the trials are spread over the processes (:mod:`.distributed`): each rank
appends to its own ``trials.rank<N>.jsonl``, and at the end rank 0 merges them into
``trials.jsonl`` and writes the reports, which equal a one-process run's.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

# torch-free at import: the command line parses and checks its arguments before torch loads
# (the heavy modules are imported by the functions that use them).
from ..names import FAULT_KINDS, FAULT_SITES, FAULT_TARGETS, MODE_NAMES, PAPER_MODES
from .report import atomic_write

if TYPE_CHECKING:
    import torch

DEFAULT_BERS = (0.0, 1e-4, 1e-3, 1e-2)
DEFAULT_SEEDS = (42, 101, 997)
DEFAULT_MODELS = ("ref-gpt2", "ref-llama")
TRIALS_FILE = "trials.jsonl"
RANK_TRIALS_GLOB = "trials.rank*.jsonl"  # each rank's own file under torchrun, merged at the end
SETTINGS_FILE = "sweep_settings.json"


@dataclass
class SweepSettings:
    model: str
    text: str | None = None
    cache_modes: list[str] = field(default_factory=lambda: list(PAPER_MODES))
    ber_levels: list[float] = field(default_factory=lambda: list(DEFAULT_BERS))
    seeds: list[int] = field(default_factory=lambda: list(DEFAULT_SEEDS))
    fault_model: str = "bsc"
    fault_site: str = "write"
    fault_targets: str = "all"
    max_samples: int | None = 8
    window: int = 256
    stride: int = 128
    output_dir: str = "results/sweep"
    device: str = "cpu"
    dtype: str = "float32"
    group_size: int | None = None
    key_quant: str = "token"  # ecc_tensor.quant_scheme: keys per token (the paper's) or per channel
    residual_length: int = 0  # the last tokens kept in 16-bit words (0: none, the paper's)
    channel_block: int = 128  # tokens per per-channel key block
    batch_size: int = 8  # windows per forward; each draws the faults it draws scored alone

    def validate(self) -> None:
        """Every check that needs neither the model nor the text: run before either loads."""
        from ..faults import FaultModel
        from ..modes import get_mode
        from .windows import make_windows

        for mode in self.cache_modes:
            get_mode(mode)
        for ber in self.ber_levels:
            if not (0.0 <= ber <= 1.0):
                raise ValueError(f"bit error rate must lie in [0, 1], got {ber}")
        for seed in self.seeds:
            FaultModel(self.fault_model, 0.0, seed, site=self.fault_site, targets=self.fault_targets)  # checks the seed too
        if self.max_samples is not None and self.max_samples < 1:
            raise ValueError(f"--max-samples must be >= 1, got {self.max_samples}")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.group_size is not None and self.group_size < 1:
            raise ValueError(f"--group-size must be a positive divisor of the model's head_dim, got {self.group_size}")
        _ = self.scheme  # QuantScheme checks the quantization axes and the window
        make_windows(self.window, self.window, self.stride)  # checks window/stride
        check_device(self.device)
        if self.text is not None:
            read_text(Path(self.text))
        from .models import resolve_model_path

        resolve_model_path(self.model)  # a missing path or a misspelt shipped name, before anything loads

    @property
    def scheme(self):
        from ..quant_scheme import QuantScheme

        return QuantScheme(self.key_quant, "token", self.residual_length, self.channel_block)

    def validate_model(self, config) -> None:
        """The checks that need the model's config (loaded before its weights)."""
        positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
        if positions is not None and self.window > positions:
            raise ValueError(f"--window {self.window} exceeds the model's {positions} positions; choose --window <= {positions}")
        heads = getattr(config, "num_attention_heads", None)
        head_dim = getattr(config, "head_dim", None) or (config.hidden_size // heads if heads else None)
        if self.group_size is not None and head_dim and head_dim % self.group_size:
            raise ValueError(f"--group-size {self.group_size} does not divide the model's head_dim {head_dim}")

    def identity(self) -> dict:
        """The settings a resumed sweep must share with the first run (the grid may grow); the
        model and the text by where they resolve to, so ``ref-gpt2`` and its directory agree."""
        from .models import resolve_model_path

        keep = ("model", "text", "fault_model", "fault_site", "fault_targets", "max_samples", "window", "stride", "dtype",
                "group_size", "batch_size")
        out = {k: getattr(self, k) for k in keep}
        if not self.scheme.plain:  # absent in the paper's scheme, so that earlier sweeps resume
            out.update(key_quant=self.key_quant, residual_length=self.residual_length, channel_block=self.channel_block)
        source = resolve_model_path(self.model)
        out["model"] = str(Path(source).resolve()) if Path(source).exists() else source
        out["text"] = str(Path(self.text).resolve()) if self.text is not None else None
        # By content too: retrained weights or an edited text at the same path are another sweep.
        out["model_sha256"] = files_sha256(Path(source), MODEL_FILES) if Path(source).exists() else None
        out["text_sha256"] = files_sha256(Path(self.text) if self.text is not None else default_text_path(), ())
        return out


MODEL_FILES = ("config.json", "*.safetensors", "*.bin")


def files_sha256(path: Path, patterns: tuple[str, ...]) -> str | None:
    """SHA-256 over a file, or over a directory's files matching ``patterns`` (names and bytes,
    in name order); None where there is nothing to read."""
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted({f for pattern in patterns for f in path.glob(pattern) if f.is_file()})
    else:
        return None
    if not files:
        return None
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0")
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def default_text_path() -> Path:
    from .models import REFERENCE_DIR

    return REFERENCE_DIR / "heldout.txt"


def check_device(device: str) -> None:
    """``cpu``, ``cuda`` or ``cuda:N`` that this machine has; a message otherwise."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported; use cpu, cuda or cuda:N")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"--device {device}: no CUDA GPU is available here (this PyTorch build: {torch.__version__}); use --device cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s)")


def trial_key(mode: str, ber: float, seed: int) -> str:
    return f"{mode}|{ber:.6g}|{seed}"


def _prepare_output_dir(settings: SweepSettings, identity: dict) -> Path:
    """Check that the output dir is writable and holds no sweep of other settings. Nothing is
    written there yet: a run that fails before its first trial leaves the directory as it was."""
    out = Path(settings.output_dir)
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"output dir {out} is not writable ({existing} is {'not a directory' if existing.exists() else 'missing'}"
                         f"{'' if not existing.is_dir() else ' and not writable'})")
    settings_path = out / SETTINGS_FILE
    if settings_path.exists():
        previous = json.loads(settings_path.read_text())
        if previous != identity and (out / TRIALS_FILE).exists():
            changed = {k: (previous.get(k), v) for k, v in identity.items() if previous.get(k) != v}
            what = ", ".join(f"{k}: {_short(old)} -> {_short(new)}" for k, (old, new) in changed.items())
            why = " (the model's weights or the text are not the ones that sweep measured)" if any(
                k.endswith("_sha256") for k in changed) else ""
            raise ValueError(
                f"{out} holds a sweep with other settings ({what}){why}; resume it with the same settings or use another --output-dir"
            )
    return out


def _short(value):
    """A setting as the refusal names it: a SHA-256 by its first 12 digits."""
    return f"{value[:12]}..." if isinstance(value, str) and len(value) == 64 else repr(value)


def _record_settings(out: Path, identity: dict) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"output dir {out} is not writable: {err}") from None
    atomic_write(out / SETTINGS_FILE, json.dumps(identity, indent=2))


def rank_trials_file(rank: int) -> str:
    return f"trials.rank{rank}.jsonl"


def load_finished(out: Path) -> dict[str, dict]:
    """Trials already in ``trials.jsonl`` and in the per-rank files a killed distributed run
    left (a torn last line from a kill is ignored)."""
    finished = {}
    for path in [out / TRIALS_FILE, *sorted(out.glob(RANK_TRIALS_GLOB))]:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            finished[trial_key(record["mode"], record["ber"], record["seed"])] = record
    return finished


def _append_trial(out: Path, record: dict, name: str = TRIALS_FILE) -> None:
    path = out / name
    # Start on a fresh line if a killed run left a torn one.
    needs_newline = path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with path.open("a") as fh:
        fh.write(("\n" if needs_newline else "") + json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_text_tokens(settings: SweepSettings, tokenizer) -> torch.Tensor:
    text_path = settings.text
    if text_path is None:
        candidate = default_text_path()
        if not candidate.exists():
            raise ValueError("no evaluation text: pass --text FILE (the reference held-out text is not built here)")
        text_path = str(candidate)
    text = read_text(Path(text_path))
    # The whole text at once, windows cut from it later: its length is no model input.
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False, verbose=False).input_ids[0]
    return ids


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path``; a message naming the file otherwise."""
    if not path.is_file():
        raise ValueError(f"text file {path} does not exist")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"text file {path} is not UTF-8 text (byte {err.start}: {err.reason}); convert it to UTF-8") from None


def _scored_windows(model, tokens, windows, settings, mode: str = "fp16", fault=None, track_silent: bool = False,
                    caches: dict | None = None):
    """Scores ``windows`` in batches of ``settings.batch_size`` through ECCCaches of ``mode``
    (one per batch size used, left in ``caches``: their counters sum to the trial's); yields
    ``(index, ids, logprobs)`` per window in order. Window ``i`` draws the faults of sequence
    ``i + 1``, as one cache scoring the windows one at a time would, whatever the batch size."""
    import torch

    from ..integrations.hf import ECCCache
    from .windows import batches, windows_logprobs

    caches = {} if caches is None else caches
    for rows in batches(len(windows), settings.batch_size):
        cache = caches.get(len(rows))
        if cache is None:
            cache = caches[len(rows)] = ECCCache(model.config, len(rows), settings.window, mode=mode, fault=fault,
                                                 group_size=settings.group_size, track_silent=track_silent, rows_as_sequences=True,
                                                 **dataclasses.asdict(settings.scheme))
        ids = torch.stack([tokens[windows[i].start : windows[i].start + settings.window] for i in rows]).to(model.device)
        logprobs = windows_logprobs(model, ids, cache, first_sequence=rows[0] + 1)
        for b, i in enumerate(rows):
            yield i, ids[b], logprobs[b]


def run_trial(model, tokens, windows, mode, ber, seed, settings, clean: dict) -> dict:
    """One (mode, BER, seed) trial over ``windows``, against the ``clean`` reference run."""
    from ..counters import COUNTER_NAMES
    from ..faults import FaultModel
    from .windows import CATASTROPHIC_FACTOR, score

    fault = FaultModel(settings.fault_model, ber, seed, site=settings.fault_site, targets=settings.fault_targets) if ber > 0 else None
    started = time.perf_counter()
    nll = kl = 0.0
    n_tokens = top5 = catastrophic = 0
    caches = {}
    for i, ids, logprobs in _scored_windows(model, tokens, windows, settings, mode, fault, track_silent=True, caches=caches):
        s = score(logprobs, ids, windows[i].scored_from, clean["logprobs"][i].to(logprobs.device))
        nll += s.nll_sum
        kl += s.kl_sum
        n_tokens += s.tokens
        top5 += s.top5_hits
        catastrophic += (not s.finite) or s.perplexity > CATASTROPHIC_FACTOR * clean["window_ppl"][i]
    stats = [cache.stats() for cache in caches.values()]
    counts = {**{k: _sum(st[k] for st in stats) for k in COUNTER_NAMES if not k.startswith("meta_")},
              **{f"meta_{k}": _sum(st["metadata"][k] for st in stats) for k in stats[0]["metadata"]}}
    if not settings.scheme.plain:  # the full-precision window's 16-bit words, counted apart
        counts.update({f"window_{k}": _sum(st["window"][k] for st in stats) for k in stats[0]["window"]})
    record = {
        "mode": mode,
        "ber": ber,
        "seed": seed,
        "perplexity": math.exp(nll / n_tokens) if math.isfinite(nll) else math.inf,
        "kl_divergence": kl / n_tokens,
        "top5_accuracy": top5 / n_tokens,
        "catastrophic_rate": catastrophic / len(windows),
        "tokens": n_tokens,
        "windows": len(windows),
        **counts,
        "wall_time_s": time.perf_counter() - started,
    }
    return record


def _sum(values):
    """A counter summed over caches; None (not measured) if any is None."""
    values = list(values)
    return None if any(v is None for v in values) else sum(values)


def clean_reference(model, tokens, windows, settings) -> dict:
    """The fp16 oracle's run (16-bit K/V, never faulted) every trial is compared with."""
    from .windows import score

    logprobs, window_ppl = [], []
    for i, ids, lp in _scored_windows(model, tokens, windows, settings):
        window_ppl.append(score(lp, ids, windows[i].scored_from, None).perplexity)
        logprobs.append(lp[windows[i].scored_from - 1 :].cpu())
    return {"logprobs": logprobs, "window_ppl": window_ppl}


def _jobs(todo: list[tuple], finished: dict[str, dict]) -> list[list[tuple]]:
    """The unfinished trials in units one rank runs in order: a mode's fault-free trials
    together (the first runs, the other seeds reuse it), every faulted trial alone."""
    jobs, fault_free = [], {}
    for mode, ber, seed in todo:
        if ber == 0.0:
            if mode not in fault_free:
                fault_free[mode] = []
                jobs.append(fault_free[mode])
            fault_free[mode].append((mode, ber, seed))
        else:
            jobs.append([(mode, ber, seed)])
    return jobs


def _merge_trials(out: Path, finished: dict[str, dict], world) -> None:
    """After a distributed run: rank 0 rewrites ``trials.jsonl`` with every trial, then each
    rank deletes its own file (a kill in between leaves duplicates, which load_finished drops)."""
    if world.rank == 0:
        atomic_write(out / TRIALS_FILE, "".join(json.dumps(r) + "\n" for r in finished.values()))
    world.barrier()
    (out / rank_trials_file(world.rank)).unlink(missing_ok=True)


def environment(settings: SweepSettings, model, world_size: int = 1) -> dict:
    import torch
    import transformers

    from .. import __version__

    return {
        "ecc_tensor": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "device": torch.cuda.get_device_name() if settings.device.startswith("cuda") else platform.processor() or platform.machine(),
        "model_class": type(model).__name__,
        "command": " ".join(sys.argv),
        "world_size": world_size,
    }


def run_sweep(settings: SweepSettings, progress: bool = True) -> list[dict]:
    import torch
    from tqdm.auto import tqdm

    from .cpu_threads import CpuThreads
    from .distributed import current_world, shard
    from .models import load_config, load_model_and_tokenizer
    from .report import write_reports
    from .windows import make_windows

    settings.validate()
    world = current_world()
    device = world.device(settings.device)
    identity = settings.identity()  # once: it hashes the weights and the text
    out = _prepare_output_dir(settings, identity)
    settings.validate_model(load_config(settings.model))
    model, tokenizer = load_model_and_tokenizer(settings.model, device, getattr(torch, settings.dtype))
    tokens = read_text_tokens(settings, tokenizer)
    windows = make_windows(tokens.numel(), settings.window, settings.stride, settings.max_samples)
    if world.rank == 0:
        _record_settings(out, identity)  # only once the model and the text have loaded
    world.barrier()
    finished = {}
    for part in world.all_gather(load_finished(out)):  # the same view on every rank, shared directory or not
        finished.update(part)
    grid = [(m, b, s) for m in settings.cache_modes for b in settings.ber_levels for s in settings.seeds]
    todo = [t for t in grid if trial_key(*t) not in finished]
    mine = [t for job in shard(_jobs(todo, finished), world) for t in job]
    trials_file = rank_trials_file(world.rank) if world.distributed else TRIALS_FILE
    # Faulted float K/V make denormals, which a CPU computes on slowly (fp16 at BER 1e-4: 10.2 s
    # against 4.3 s for two windows); they change no result worth keeping here.
    flush_denormal = torch.set_flush_denormal(True) if settings.device == "cpu" else False
    threads = CpuThreads() if settings.device == "cpu" else None  # fewer threads when others share the cores
    clean = clean_reference(model, tokens, windows, settings) if mine else None
    if world.distributed:  # rank 0's bar counts its own share
        bar = tqdm(total=len(mine), desc=f"sweep, rank 0 of {world.size}", unit="trial", disable=not progress or world.rank != 0)
    else:
        bar = tqdm(total=len(grid), initial=len(grid) - len(todo), desc="sweep", unit="trial", disable=not progress)
    new = {}
    for mode, ber, seed in mine:
        if threads is not None:
            threads.adjust()
        bar.set_postfix_str(f"{mode} ber={ber:g} seed={seed}")
        # Without faults the seed changes nothing: reuse the first fault-free trial of a mode.
        twin = next((r for r in finished.values() if r["mode"] == mode and r["ber"] == 0.0), None) if ber == 0.0 else None
        if twin is not None:
            record = {**twin, "seed": seed, "reused_from_seed": twin.get("reused_from_seed", twin["seed"]), "wall_time_s": 0.0}
        else:
            record = run_trial(model, tokens, windows, mode, ber, seed, settings, clean)
        record["rank"] = world.rank
        _append_trial(out, record, trials_file)
        finished[trial_key(mode, ber, seed)] = new[trial_key(mode, ber, seed)] = record
        bar.set_postfix_str(f"{mode} ber={ber:g} seed={seed} ppl={record['perplexity']:.3g}")
        bar.update()
    bar.close()
    if flush_denormal:
        torch.set_flush_denormal(False)
    if threads is not None:
        threads.restore()
    if world.distributed:
        for part in world.all_gather(new):
            finished.update(part)
        _merge_trials(out, finished, world)
    records = [finished[trial_key(*t)] for t in grid]
    # The reports cover every trial in the directory: a smaller grid rerun into it reports the
    # earlier trials too, rather than overwriting the reports with its own few.
    in_grid = {trial_key(*t) for t in grid}
    everything = records + [r for key, r in finished.items() if key not in in_grid]
    if world.rank == 0:
        write_reports(out, everything, settings, environment(settings, model, world.size))
    world.barrier()  # the reports exist when any rank returns
    return records


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ecc-tensor sweep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = SweepSettings(model="")
    p.add_argument("--model", nargs="+", default=list(DEFAULT_MODELS), metavar="MODEL",
                   help="reference short name (ref-gpt2, ref-llama), local HF dir, or hub id; with several, each model's "
                        "results go to OUTPUT_DIR/<model name> (default: ref-gpt2 ref-llama)")
    p.add_argument("--text", default=None, help="evaluation text file (default: the reference held-out text)")
    p.add_argument("--cache-modes", nargs="+", default=d.cache_modes, metavar="MODE",
                   help=f"of {', '.join(MODE_NAMES)} (default: the paper's six)")
    p.add_argument("--ber-levels", nargs="+", type=float, default=d.ber_levels)
    p.add_argument("--seeds", nargs="+", type=int, default=d.seeds)
    p.add_argument("--fault-model", choices=FAULT_KINDS + ("random",), default=d.fault_model)
    p.add_argument("--fault-site", choices=FAULT_SITES, default=d.fault_site)
    p.add_argument("--fault-targets", choices=FAULT_TARGETS, default=d.fault_targets,
                   help="stored bytes faults strike: all (codewords, scales, zero points; default) or values (the paper's model)")
    p.add_argument("--max-samples", type=int, default=d.max_samples, help="windows per trial (default 8; 0 = all)")
    p.add_argument("--window", type=int, default=d.window)
    p.add_argument("--stride", type=int, default=d.stride)
    p.add_argument("--output-dir", default=d.output_dir)
    p.add_argument("--device", default=d.device)
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default=d.dtype)
    p.add_argument("--group-size", type=int, default=None)
    p.add_argument("--key-quant", choices=("token", "channel"), default=d.key_quant,
                   help="keys' quantization axis: token (one scale per token and head, the paper's; default) or channel "
                        "(one scale per channel over a block of --channel-block tokens, as KIVI and KVQuant)")
    p.add_argument("--residual-length", type=int, default=d.residual_length,
                   help="the most recent tokens kept in 16-bit words, faulted as such with --fault-targets all (default 0)")
    p.add_argument("--channel-block", type=int, default=d.channel_block, help="tokens per per-channel key block (default 128)")
    p.add_argument("--batch-size", type=int, default=d.batch_size,
                   help=f"windows scored per forward (default {d.batch_size}); each draws the faults it draws scored alone")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def model_dir_name(model: str) -> str:
    """The subdirectory of ``--output-dir`` for one of several models."""
    path = Path(model)
    return path.resolve().name if path.exists() else model.strip("/").replace("/", "--")


def settings_from_args(args: argparse.Namespace) -> list[SweepSettings]:
    """One sweep per ``--model``: its own output dir when there are several."""
    fields = {f.name for f in dataclasses.fields(SweepSettings)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    if values.get("max_samples") == 0:
        values["max_samples"] = None
    models = values.pop("model")
    models = [models] if isinstance(models, str) else list(dict.fromkeys(models))
    out = Path(values.pop("output_dir"))
    dirs = [out] if len(models) == 1 else [out / model_dir_name(m) for m in models]
    if len(set(dirs)) != len(dirs):
        raise ValueError(f"two of the models {models} would share an output dir; run them one at a time")
    return [SweepSettings(model=m, output_dir=str(d), **values) for m, d in zip(models, dirs)]


def run_from_args(args: argparse.Namespace) -> int:
    from .distributed import current_world, shutdown

    all_settings = settings_from_args(args)
    for settings in all_settings:  # every argument of every model checked before any model loads
        settings.validate()
    try:
        first = current_world().rank == 0  # under torchrun, rank 0 alone speaks
        for settings in all_settings:
            if len(all_settings) > 1 and not args.quiet and first:
                print(f"== {settings.model}", file=sys.stderr)
            records = run_sweep(settings, progress=not args.quiet)
            if first:
                print(f"{settings.model}: {len(records)} trials; results in {settings.output_dir} "
                      "(results.json, summary.csv, tables.md, plots/)")
    finally:
        shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except ValueError as err:
        parser.exit(2, f"ecc-tensor sweep: error: {err}\n")
