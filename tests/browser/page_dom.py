"""What a reader sees in a rendered page's DOM (``page.content()``), for the chapter checks.

A plain substring test on the DOM cannot fail where it should: the page's scripts and styles name
everything the page might show (the stored widget state lists every model's CSS class, the
widget manager injects a stylesheet full of ``.widget-slider`` rules, every page links
``exercise.css``), and a dangling cross-reference leaves its label as code, not the warning's
words.  These helpers look at rendered elements only; ``test_checks_catch_problems.py`` shows
each of them failing on a page where the thing is missing.
"""

from __future__ import annotations

import html
import re

_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.S | re.I)
_CLASS = re.compile(r'\sclass="([^"]*)"')
_XREF = re.compile(r'<code class="xref ([a-z]+)[^"]*"[^>]*>(.*?)</code>', re.S)
_LINK_OPEN = re.compile(r"<a\b[^>]*>\s*$")


def shown(dom: str) -> str:
    """``dom`` without its ``<script>`` and ``<style>`` elements (what can be rendered)."""
    return _SCRIPT_OR_STYLE.sub("", dom)


def with_class(dom: str, name: str) -> int:
    """How many rendered elements carry the CSS class ``name`` (a whole class token)."""
    return sum(name in m[1].split() for m in _CLASS.finditer(shown(dom)))


def page_text(dom: str) -> str:
    """The page's visible text: tags removed, entities decoded, white space collapsed."""
    text = re.sub(r"<[^>]+>", " ", shown(dom))
    return " ".join(html.unescape(text).split())


def exercises(dom: str) -> list[str]:
    """The ids of the page's exercise admonitions (sphinx-exercise), in page order."""
    return re.findall(r'<div class="exercise\b[^"]*"[^>]*\bid="([^"]+)"', shown(dom))


def solved(dom: str) -> list[str]:
    """The exercise each solution admonition names (its title links ``#<exercise id>``)."""
    titles = re.findall(
        r'<div class="solution\b[^"]*"[^>]*>\s*<p class="admonition-title"[^>]*>(.*?)</p>', shown(dom), re.S
    )
    return [m[1] for t in titles if (m := re.search(r'href="#([^"]+)"', t))]


def unresolved_references(dom: str, kinds: tuple[str, ...] = ("eq", "std")) -> list[str]:
    """Labels of cross-references Sphinx could not resolve (its ``<code class="xref ...">`` outside a link).

    ``kinds`` are the roles' domains: ``eq`` ({eq}), ``std`` ({numref}, {ref}, {term}).  Sphinx
    resolves a reference by wrapping it in ``<a>``; a dangling one keeps the bare code and only
    the build log says "equation not found".
    """
    page = shown(dom)
    return [
        html.unescape(re.sub(r"<[^>]+>", "", m[2]))
        for m in _XREF.finditer(page)
        if m[1] in kinds and not _LINK_OPEN.search(page[max(0, m.start() - 400) : m.start()])
    ]
