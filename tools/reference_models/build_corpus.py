"""Rebuild the reference corpus from Debian packages, deterministically, with checksums.

Text that no one here wrote, installed by package name from the registries we reach:

* train / test: the Python 3.11 documentation (Debian ``python3.11-doc``): tutorial, library
  and language reference, HOWTOs, "What's New": modern, varied technical prose. Pages are
  split by a hash of their path: 1 in 20 pages is held out as the test text, never trained on.
* out-of-domain test: the Debian Reference (``debian-reference-en``), system-administration
  prose from other authors.

    python tools/reference_models/build_corpus.py --out build/corpus

writes train.txt, test.txt, ood_test.txt and SHA256SUMS (and checks it against the pinned
sums below with --check). Package versions are pinned; apt-get download fetches them.
"""

from __future__ import annotations

import argparse
import hashlib
import html.parser
import re
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGES = {
    "python3.11-doc": "3.11.2-6+deb12u8",
    "debian-reference-en": "2.100",
}
PYDOC_ROOT = "usr/share/doc/python3.11/html"
DEBREF_ROOT = "usr/share/debian-reference"
PYDOC_SECTIONS = ("tutorial", "library", "reference", "howto", "whatsnew", "faq", "using", "extending", "c-api", "install", "installing", "distributing", "distutils")
TEST_EVERY = 20


class _MainText(html.parser.HTMLParser):
    """Text of an HTML page's main content, one paragraph-like block per line group."""

    BLOCK = {"p", "div", "li", "dt", "dd", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section", "blockquote"}
    SKIP = {"script", "style", "head", "nav"}

    def __init__(self, main_marker):
        super().__init__(convert_charrefs=True)
        self.main_marker = main_marker  # (tag, attr, value) opening the main content, or None
        self.depth_in_main = 0 if main_marker is None else None
        self.skip = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        if self.depth_in_main is None:
            t, a, v = self.main_marker
            if tag == t and dict(attrs).get(a) == v:
                self.depth_in_main = 1
            return
        if tag == "div":
            self.depth_in_main += 1
        if tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        if self.depth_in_main is not None and tag == "div" and self.main_marker is not None:
            self.depth_in_main -= 1
            if self.depth_in_main == 0:
                self.depth_in_main = -(10**9)  # main content closed: ignore the rest
        if tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if self.skip or self.depth_in_main is None or self.depth_in_main <= 0 and self.main_marker is not None:
            return
        self.parts.append(data.replace("\u00b6", ""))  # Sphinx permalink pilcrows


def html_to_text(source: str, main_marker=None) -> str:
    parser = _MainText(main_marker)
    parser.feed(source)
    text = "".join(parser.parts)
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def fetch(packages: dict[str, str], workdir: Path) -> dict[str, Path]:
    """apt-get download + dpkg-deb -x each pinned package; returns name -> extracted root."""
    roots = {}
    for name, version in packages.items():
        subprocess.run(["apt-get", "download", f"{name}={version}"], cwd=workdir, check=True, capture_output=True)
        deb = next(workdir.glob(f"{name}_*.deb"))
        root = workdir / name
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        roots[name] = root
    return roots


def is_test_page(relative: str) -> bool:
    return int(hashlib.sha256(relative.encode()).hexdigest(), 16) % TEST_EVERY == 0


def build(out: Path, roots: dict[str, Path]) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    pydoc = roots["python3.11-doc"] / PYDOC_ROOT
    train, test = [], []
    for page in sorted(pydoc.rglob("*.html")):
        relative = page.relative_to(pydoc).as_posix()
        if relative.split("/")[0] not in PYDOC_SECTIONS:
            continue
        text = html_to_text(page.read_text(encoding="utf-8"), ("div", "role", "main"))
        if len(text) < 200:
            continue
        (test if is_test_page(relative) else train).append(text)
    debref = roots["debian-reference-en"] / DEBREF_ROOT
    ood = [html_to_text(p.read_text(encoding="utf-8")) for p in sorted(debref.glob("*.en.html"))]
    files = {"train.txt": "\n\n".join(train), "test.txt": "\n\n".join(test), "ood_test.txt": "\n\n".join(ood)}
    sums = {}
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        sums[name] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    (out / "SHA256SUMS").write_text("".join(f"{h}  {n}\n" for n, h in sorted(sums.items())))
    return sums


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("build/corpus"))
    p.add_argument("--check", type=Path, help="a SHA256SUMS file the rebuilt corpus must match")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sums = build(args.out, fetch(PACKAGES, Path(tmp)))
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
