"""The reference corpus's sources: pinned Debian packages (main), and which of their files
become documents, converted how. Each source yields ``(document id, text)`` in a fixed order.

English documentation (prose and its examples) and source code, the material for the copying
behaviour that makes a model depend on its KV cache. Versions are Debian 12 (bookworm)'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from extract import html_to_text, man_to_text, pod_to_text, read_text, source_code, tidy

PYDOC_ROOT = "usr/share/doc/python3.11/html"
PYDOC_SECTIONS = ("tutorial", "library", "reference", "howto", "whatsnew", "faq", "using", "extending", "c-api", "install", "installing",
                  "distributing", "distutils")
RUST_BOOKS = ("book", "reference", "nomicon", "rust-by-example", "edition-guide", "embedded-book", "rustc", "rustdoc", "cargo")
MIN_CHARS = 200  # shorter pages are navigation, indexes or stubs


@dataclass(frozen=True)
class Source:
    name: str
    package: str
    version: str
    kind: str  # "docs" or "code"
    documents: Callable[[Path], Iterator[tuple[str, str]]]


def _files(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.rglob(pattern) if p.is_file())


def python_docs(root: Path):
    base = root / PYDOC_ROOT
    for page in _files(base, "*.html"):
        relative = page.relative_to(base).as_posix()
        if relative.split("/")[0] in PYDOC_SECTIONS:
            yield relative, html_to_text(page.read_text(encoding="utf-8"), ("div", "role", "main"))


def linux_docs(root: Path):
    base = root / "usr/share/doc/linux-doc-6.1/Documentation"
    for path in _files(base, "*"):
        if path.name.endswith((".rst", ".rst.gz", ".txt", ".txt.gz")):
            yield path.relative_to(base).as_posix(), tidy(read_text(path))


def man_pages(root: Path):
    base = root / "usr/share/man"
    for path in _files(base, "*.gz"):
        if path.parent.name.startswith("man"):
            yield path.relative_to(base).as_posix(), man_to_text(path)


def perl_docs(root: Path):
    for path in _files(root / "usr/share/perl", "*.pod"):
        yield path.relative_to(root).as_posix(), pod_to_text(path)


def html_tree(base: str, main_marker=None, skip_marker=None, keep: Callable[[str], bool] = lambda r: True):
    def documents(root: Path):
        top = root / base
        for page in _files(top, "*.html"):
            relative = page.relative_to(top).as_posix()
            if keep(relative):
                yield relative, html_to_text(page.read_text(encoding="utf-8", errors="replace"), main_marker, skip_marker)

    return documents


def _rust_chapter(relative: str) -> bool:
    parts = relative.split("/")
    return parts[0] in RUST_BOOKS and parts[-1] not in ("print.html", "toc.html", "404.html", "index.html")


def code_tree(base: str, suffix: str, exclude: tuple[str, ...] = ()):
    def documents(root: Path):
        top = root / base
        for path in _files(top, f"*{suffix}"):
            relative = path.relative_to(top).as_posix()
            if not any(part in exclude for part in relative.split("/")):
                yield relative, source_code(path)

    return documents


SOURCES = (
    Source("python-docs", "python3.11-doc", "3.11.2-6+deb12u8", "docs", python_docs),
    Source("linux-docs", "linux-doc-6.1", "6.1.176-1", "docs", linux_docs),
    Source("man-pages", "manpages", "6.03-2", "docs", man_pages),
    Source("man-pages-dev", "manpages-dev", "6.03-2", "docs", man_pages),
    Source("perl-docs", "perl-doc", "5.36.0-7+deb12u3", "docs", perl_docs),
    Source("postgresql-docs", "postgresql-doc-15", "15.18-0+deb12u1", "docs",
           html_tree("usr/share/doc/postgresql-doc-15/html", skip_marker=("div", "class", ("navheader", "navfooter")))),
    Source("sqlite-docs", "sqlite3-doc", "3.40.1-2+deb12u2", "docs", html_tree("usr/share/doc/sqlite3")),
    Source("rust-books", "rust-doc", "1.63.0+dfsg1-2", "docs",
           html_tree("usr/share/doc/rust-doc/html", ("main", None, None), keep=_rust_chapter)),
    Source("django-docs", "python-django-doc", "3:3.2.25-0+deb12u3", "docs",
           html_tree("usr/share/doc/python-django-doc/html", ("div", "id", "yui-main"))),
    Source("python-stdlib", "libpython3.11-stdlib", "3.11.2-6+deb12u8", "code", code_tree("usr/lib/python3.11", ".py", ("test",))),
    Source("python-stdlib-core", "libpython3.11-minimal", "3.11.2-6+deb12u8", "code", code_tree("usr/lib/python3.11", ".py", ("test",))),
    Source("python-tests", "libpython3.11-testsuite", "3.11.2-6+deb12u8", "code", code_tree("usr/lib/python3.11/test", ".py")),
    Source("go-source", "golang-1.19-src", "1.19.8-2", "code", code_tree("usr/share/go-1.19/src", ".go", ("testdata", "vendor"))),
)

OOD = Source("debian-reference", "debian-reference-en", "2.100", "docs",
             html_tree("usr/share/debian-reference", keep=lambda r: r.endswith(".en.html") and "/" not in r))
