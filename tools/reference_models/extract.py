"""Clean text out of the formats Debian ships documentation in: HTML, POD, troff man pages,
plain text and source code (gzip-compressed or not). Deterministic: the same file gives the
same bytes on any machine with the same Debian tools (pod2text, groff)."""

from __future__ import annotations

import gzip
import html.parser
import os
import re
import subprocess
from pathlib import Path


class _MainText(html.parser.HTMLParser):
    """Text of an HTML page's main content, one paragraph-like block per line group.

    ``main_marker`` ``(tag, attr, value)`` opens the main content (``attr`` None: the tag
    itself); None takes the whole page. ``skip_marker`` ``(tag, attr, values)`` drops the
    elements it matches (navigation bars)."""

    BLOCK = {"p", "div", "li", "dt", "dd", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section", "blockquote"}
    SKIP = {"script", "style", "head", "nav"}

    def __init__(self, main_marker, skip_marker=None):
        super().__init__(convert_charrefs=True)
        self.main_marker = main_marker
        self.skip_marker = skip_marker
        self.depth_in_main = 0 if main_marker is None else None
        self.skip = 0
        self.skip_depth = 0  # > 0 inside a skipped element: its nesting depth in its own tag
        self.parts: list[str] = []

    def _matches(self, marker, tag, attrs) -> bool:
        t, a, v = marker
        if tag != t:
            return False
        if a is None:
            return True
        got = dict(attrs).get(a)
        return got in v if isinstance(v, (set, frozenset, tuple)) else got == v

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        if self.skip_marker is not None and tag == self.skip_marker[0]:
            if self.skip_depth:
                self.skip_depth += 1
            elif self._matches(self.skip_marker, tag, attrs):
                self.skip_depth = 1
        if self.depth_in_main is None:
            if self._matches(self.main_marker, tag, attrs):
                self.depth_in_main = 1
            return
        if self.main_marker is not None and tag == self.main_marker[0]:
            self.depth_in_main += 1
        if tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        if self.skip_depth and tag == self.skip_marker[0]:
            self.skip_depth -= 1
        if self.depth_in_main is not None and self.main_marker is not None and tag == self.main_marker[0]:
            self.depth_in_main -= 1
            if self.depth_in_main == 0:
                self.depth_in_main = -(10**9)  # main content closed: ignore the rest
        if tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if self.skip or self.skip_depth or self.depth_in_main is None or self.depth_in_main <= 0 and self.main_marker is not None:
            return
        self.parts.append(data.replace("\u00b6", ""))  # Sphinx permalink pilcrows


def tidy(text: str) -> str:
    """Spaces collapsed per line, at most one blank line in a row."""
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def html_to_text(source: str, main_marker=None, skip_marker=None) -> str:
    parser = _MainText(main_marker, skip_marker)
    parser.feed(source)
    return tidy("".join(parser.parts))


def read_text(path: Path) -> str:
    """A file's text, gunzipped if it ends in .gz; undecodable bytes replaced."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.decode("utf-8", errors="replace")


def source_code(path: Path) -> str:
    """Source as written, trailing spaces and tabs removed, tabs kept (they are Go's indent)."""
    text = read_text(path)
    return "\n".join(line.rstrip() for line in text.split("\n")).strip() + "\n"


def pod_to_text(path: Path) -> str:
    out = subprocess.run(["pod2text", "-w", "80", str(path)], capture_output=True, check=False)
    return tidy(out.stdout.decode("utf-8", errors="replace"))


def man_to_text(path: Path) -> str:
    """A man page rendered by groff at 80 columns, without overstrike or colour."""
    source = read_text(path)
    if source.lstrip().startswith(".so "):  # a link to another page
        return ""
    env = {**os.environ, "LC_ALL": "C.UTF-8", "MANWIDTH": "80"}
    out = subprocess.run(
        ["groff", "-t", "-man", "-Tutf8", "-P", "-cbou", "-rLL=80n", "-rcR=1"],
        input=source.encode(), capture_output=True, env=env, check=False,
    )
    return tidy(out.stdout.decode("utf-8", errors="replace"))
