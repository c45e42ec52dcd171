"""Rebuild the reference corpus from pinned Debian packages, deterministically, with checksums.

Text that no one here wrote, from the packages of Debian 12 (main) that the registries serve
(`tools/reference_models/sources.py` lists them and how each file becomes a document):
English documentation (the Python 3.11 docs, the Linux kernel's, the man pages, Perl's,
PostgreSQL's, SQLite's, the Rust books, Django's) and source code (the Python standard library
and its tests, Go's standard library).

* Every document is cleaned (HTML, POD and troff rendered to text, code kept as written),
  documents shorter than 200 characters dropped, exact duplicates dropped (first kept).
* 1 document in 20 is held out by a hash of its path, never trained on: the Python docs' held
  out pages are ``test.txt`` (the same pages, byte for byte, as the first corpus's: old and
  new models compare on it), the other sources' are ``test_mix.txt``.
* ``ood_test.txt``: the Debian Reference (``debian-reference-en``), held out entirely.

    python tools/reference_models/build_corpus.py --out build/corpus-full --check tools/reference_models/corpus-full.sha256
    python tools/reference_models/build_corpus.py --sources python-docs --out build/corpus --check tools/reference_models/corpus.sha256

(the second: the first corpus, on which ref-gpt2 and ref-llama were trained). Writes the texts,
``manifest.json`` (documents and characters per source and split) and ``SHA256SUMS``.
``--debs DIR`` takes the .deb files from DIR (``apt-get download`` fills it when missing).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from sources import MIN_CHARS, OOD, SOURCES, Source  # noqa: E402  (tools/reference_models/sources.py)

TEST_EVERY = 20
HELD_OUT_AS_TEST = "python-docs"  # its held-out pages are test.txt, as in the first corpus


def fetch(sources: list[Source], debs: Path) -> dict[str, Path]:
    """Each source's package, pinned, extracted (``apt-get download`` into ``debs`` unless the
    .deb is there); returns package -> extracted root under ``debs/x``."""
    roots = {}
    for source in sources:
        if source.package in roots:
            continue
        version = source.version.replace(":", "%3a")  # as apt-get download names the file
        matches = sorted(debs.glob(f"{source.package}_{version}_*.deb"))
        if not matches:
            subprocess.run(["apt-get", "download", f"{source.package}={source.version}"], cwd=debs, check=True, capture_output=True)
            matches = sorted(debs.glob(f"{source.package}_{version}_*.deb"))
        deb = matches[0]
        root = debs / "x" / source.package
        if not root.exists():
            root.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        roots[source.package] = root
    return roots


def is_held_out(document_id: str) -> bool:
    return int(hashlib.sha256(document_id.encode()).hexdigest(), 16) % TEST_EVERY == 0


def build(out: Path, sources: list[Source], roots: dict[str, Path], progress=print) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    splits = {"train.txt": [], "test.txt": [], "test_mix.txt": []}
    seen: set[str] = set()
    manifest = {}
    for source in sources:
        counts = {"train_documents": 0, "held_out_documents": 0, "train_chars": 0, "held_out_chars": 0, "duplicates": 0}
        for relative, text in source.documents(roots[source.package]):
            if len(text) < MIN_CHARS:
                continue
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
            if digest in seen:
                counts["duplicates"] += 1
                continue
            seen.add(digest)
            # The Python docs keep the first corpus's split (a hash of the page path alone).
            document_id = relative if source.name == HELD_OUT_AS_TEST else f"{source.name}/{relative}"
            if is_held_out(document_id):
                splits["test.txt" if source.name == HELD_OUT_AS_TEST else "test_mix.txt"].append(text)
                counts["held_out_documents"] += 1
                counts["held_out_chars"] += len(text)
            else:
                splits["train.txt"].append(text)
                counts["train_documents"] += 1
                counts["train_chars"] += len(text)
        manifest[source.name] = {"package": source.package, "version": source.version, "kind": source.kind, **counts}
        progress(f"{source.name:20s} {counts['train_documents']:6d} train / {counts['held_out_documents']:4d} held-out documents, "
                 f"{counts['train_chars'] / 1e6:7.1f} MB train, {counts['duplicates']} duplicates")
    ood = [text for _, text in OOD.documents(roots[OOD.package])]
    files = {name: "\n\n".join(texts) for name, texts in splits.items() if texts}
    files["ood_test.txt"] = "\n\n".join(ood)
    sums = {}
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        sums[name] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    (out / "manifest.json").write_text(json.dumps({"sources": manifest, "ood": {"package": OOD.package, "version": OOD.version}},
                                                  indent=2) + "\n")
    (out / "SHA256SUMS").write_text("".join(f"{h}  {n}\n" for n, h in sorted(sums.items())))
    return sums


def main(argv=None) -> int:
    names = [s.name for s in SOURCES]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("build/corpus-full"))
    p.add_argument("--sources", nargs="+", choices=names, default=names, help="default: all")
    p.add_argument("--debs", type=Path, default=None, help="directory of downloaded .deb files (default: a temporary one)")
    p.add_argument("--check", type=Path, help="a SHA256SUMS file the rebuilt corpus must match")
    args = p.parse_args(argv)
    sources = [s for s in SOURCES if s.name in args.sources]
    with tempfile.TemporaryDirectory() as tmp:
        debs = args.debs or Path(tmp)
        debs.mkdir(parents=True, exist_ok=True)
        sums = build(args.out, sources, fetch([*sources, OOD], debs))
    for name, digest in sorted(sums.items()):
        size = (args.out / name).stat().st_size
        print(f"{digest}  {name}  ({size / 1e6:.1f} MB)")
    if args.check:
        expected = dict(reversed(line.split()) for line in args.check.read_text().splitlines() if line.strip())
        if expected != sums:
            print(f"checksums differ from {args.check}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
