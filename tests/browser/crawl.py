"""Crawl the built book on disk: which pages exist, what they link to, which anchors they define.

The page list of the browser checks comes from here: a breadth-first crawl from ``index.html``
that follows every internal ``<a href>`` (and the ``index.html`` meta refresh) to HTML pages.
No page is hard-coded, so a new chapter is checked as soon as the table of contents links it.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urljoin, urlsplit

#: Folders of the build that hold assets and sources, not pages.
ASSET_DIRS = ("_static/", "_sources/", "_images/")
_REFRESH = re.compile(r"url=(?P<url>.+)$", re.I)
_NUMBER = re.compile(r"\(?(\d+(?:\.\d+)+)\)?")


@dataclass
class Link:
    """One internal reference on a page."""

    source: str  #: page that holds the link (relative path, e.g. ``chapters/01_x.html``)
    href: str  #: as written in the HTML
    target: str  #: resolved file, relative to the book root
    fragment: str  #: anchor ("" when none)
    text: str  #: the link text (e.g. ``(7.3)`` for an equation reference)


@dataclass
class Page:
    """What the crawler learnt about one HTML page."""

    path: str
    ids: set[str] = field(default_factory=set)
    links: list[Link] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)  #: local files the page loads (src, link href)
    external: list[str] = field(default_factory=list)  #: outgoing http(s) links (not requests)
    eqno: dict[str, str] = field(default_factory=dict)  #: equation anchor -> "(1.2)"
    numbers: dict[str, str] = field(default_factory=dict)  #: figure/exercise/proof anchor -> "1.2"
    refresh: str | None = None  #: target of a ``<meta http-equiv="refresh">`` redirect, if any


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.hrefs: list[tuple[str, list[str]]] = []  # (href, text parts collected while open)
        self.resources: list[str] = []
        self.refresh: str | None = None
        self.eqno: dict[str, str] = {}
        self.numbers: dict[str, str] = {}
        self._open_links: list[list[str]] = []
        self._id_stack: list[str | None] = []  # nearest enclosing element id, per open element
        self._in_eqno: list[str] | None = None
        self._in_caption: list[str] | None = None
        self._caption_owner: str | None = None
        self._eqno_owner: str | None = None

    VOID = {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }

    def _nearest_id(self) -> str | None:
        for ident in reversed(self._id_stack):
            if ident:
                return ident
        return None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "name" in a:
            self.ids.add(a["name"])
        if tag not in self.VOID:
            self._id_stack.append(a.get("id"))
        if tag == "a" and "href" in a:
            parts: list[str] = []
            self.hrefs.append((a["href"], parts))
            self._open_links.append(parts)
        elif tag == "a":
            self._open_links.append([])
        if tag in ("script", "img", "iframe") and a.get("src"):
            self.resources.append(a["src"])
        if (
            tag == "link"
            and a.get("href")
            and a.get("rel", "") in ("stylesheet", "preload", "icon", "shortcut icon")
        ):
            self.resources.append(a["href"])
        if tag == "meta" and a.get("http-equiv", "").lower() == "refresh":
            m = _REFRESH.search(a.get("content", ""))
            if m:
                self.refresh = m["url"].strip().strip("'\"")
        cls = a.get("class", "").split()
        if tag == "span" and "eqno" in cls:
            self._in_eqno, self._eqno_owner = [], self._nearest_id()
        if tag == "span" and "caption-number" in cls:
            self._in_caption, self._caption_owner = [], self._nearest_id()

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self._id_stack:
            self._id_stack.pop()
        if tag == "a" and self._open_links:
            self._open_links.pop()
        if tag == "span" and self._in_eqno is not None:
            text = "".join(self._in_eqno).strip()
            if self._eqno_owner and text:
                self.eqno[self._eqno_owner] = text
            self._in_eqno = None
        if tag == "span" and self._in_caption is not None:
            m = _NUMBER.search("".join(self._in_caption))
            if self._caption_owner and m:
                self.numbers[self._caption_owner] = m[1]
            self._in_caption = None

    def handle_data(self, data: str) -> None:
        for parts in self._open_links:
            parts.append(data)
        if self._in_eqno is not None:
            self._in_eqno.append(data)
        if self._in_caption is not None:
            self._in_caption.append(data)


def _resolve(root: Path, source: str, href: str) -> tuple[str, str] | None:
    """Map ``href`` on page ``source`` to ``(file relative to root, fragment)``; None if external."""
    base = "http://book.invalid/" + source
    full = urljoin(base, href)
    parts = urlsplit(full)
    if parts.scheme != "http" or parts.netloc != "book.invalid":
        return None
    rel = unquote(parts.path.lstrip("/"))
    if rel == "" or rel.endswith("/"):
        rel += "index.html"
    if (root / rel).is_dir():
        rel = str(PurePosixPath(rel) / "index.html")
    return rel, unquote(parts.fragment)


def parse_page(root: Path, rel: str) -> tuple[Page, str | None]:
    """Parse ``root/rel``; return the page and its meta-refresh target (if any)."""
    parser = _Parser()
    parser.feed((root / rel).read_text(encoding="utf-8", errors="replace"))
    page = Page(rel, ids=parser.ids, eqno=parser.eqno, numbers=parser.numbers)
    for href, parts in parser.hrefs:
        if href.startswith(("mailto:", "javascript:", "tel:")):
            continue
        resolved = _resolve(root, rel, href)
        if resolved is None:
            page.external.append(href)
            continue
        target, fragment = resolved
        page.links.append(Link(rel, href, target, fragment, " ".join("".join(parts).split())))
    for src in parser.resources:
        resolved = _resolve(root, rel, src)
        page.resources.append(resolved[0] if resolved else src)
    refresh = None
    if parser.refresh:
        resolved = _resolve(root, rel, parser.refresh)
        refresh = resolved[0] if resolved else parser.refresh
    page.refresh = refresh
    return page, refresh


def crawl(root: Path, start: str = "index.html") -> dict[str, Page]:
    """Breadth-first crawl of the HTML pages reachable from ``start`` inside ``root``.

    Parameters
    ----------
    root : pathlib.Path
        The built book (``_build/html``).
    start : str
        The first page, relative to ``root``.

    Returns
    -------
    dict
        ``relative path -> Page`` for every reachable ``.html`` file outside the asset folders,
        in crawl order.

    Raises
    ------
    FileNotFoundError
        If ``root/start`` does not exist (the book is not built).
    """
    root = Path(root)
    if not (root / start).is_file():
        raise FileNotFoundError(f"{root / start} not found: build the book first (make build).")
    pages: dict[str, Page] = {}
    queue: deque[str] = deque([start])
    seen = {start}
    while queue:
        rel = queue.popleft()
        page, refresh = parse_page(root, rel)
        pages[rel] = page
        nexts = [link.target for link in page.links] + ([refresh] if refresh else [])
        for target in nexts:
            if (
                target.endswith(".html")
                and not target.startswith(ASSET_DIRS)
                and target not in seen
                and (root / target).is_file()
            ):
                seen.add(target)
                queue.append(target)
    return pages


def html_files(root: Path) -> list[str]:
    """Every page-like ``.html`` file on disk (outside the asset folders), relative to ``root``."""
    root = Path(root)
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*.html")
        if not str(p.relative_to(root)).startswith(ASSET_DIRS)
    )
