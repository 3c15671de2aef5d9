"""Keep every page free of JavaScript console errors (checked by tests/browser/test_book.py).

Two defects of the Jupyter Book 1.x stack (Sphinx 7.4, sphinx-thebe 0.3.1, pydata-sphinx-theme
0.17) each put an error in the console of *every* page:

* sphinx-thebe adds its inline configuration script (``const THEBE_JS_URL = ...``) through
  ``app.add_js_file(None, body=...)``; Sphinx stores it once as ``None`` and once as ``""``,
  so the page declares the constant twice: ``SyntaxError: Identifier 'THEBE_JS_URL' has
  already been declared``.  :func:`dedupe_scripts` drops the second copy of any script whose
  source and body are the same.
* Without a ``default_mode`` (an ``html_context`` value of the theme) the page starts with ``data-mode=""`` and the theme
  logs ``Got invalid theme mode: . Resetting to auto.``  We set ``default_mode: auto`` (follow
  the reader's system setting, which is what the theme falls back to anyway) unless
  ``sphinx.config.html_context`` in ``_config.yml`` chose one.

It also removes a cosmetic one (a second search field in a top navbar; see ``_config_inited``),
and loads MathJax on every page, so that math in a chapter title is typeset in the navigation
of every page (see ``setup``).

And one of the offline set-up (``offline_assets.py``): the ipywidgets HTML manager finds its
font files relative to the URL require.js gives its AMD module, which by default is the page's
own folder (``chapters/@jupyter-widgets/html-manager/dist/*.woff2``: 404s on every widget page).
:func:`add_require_config` configures require.js, just before it loads, to map that module to
the book's ``_static/html-manager/`` copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config


def _key(script: Any) -> tuple:
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {}) or {}
    return (str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items() if k != "priority")))


def dedupe_scripts(scripts: list) -> list:
    """Return ``scripts`` without repeats, keeping the first of each (same file, same body).

    Parameters
    ----------
    scripts : list
        Sphinx's ``_JavaScript`` entries (or plain file names) in page order.
    """
    seen: set[tuple] = set()
    out = []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            out.append(script)
    return out


#: Inline script for pages with widgets, placed right before require.js.
#: 1. Configures require.js (it reads a global ``require`` object when it loads) so that the
#:    widget manager's AMD modules resolve to the book's own copy and their fonts are found next
#:    to it: every module the manager defines (the Play button's
#:    icons, which were requested from ``<page folder>/@jupyter-widgets/*.woff2``).
#: 2. The widget manager (written for MathJax 2) typesets widget labels with
#:    ``MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])`` whenever ``window.MathJax``
#:    exists; MathJax 3 has no ``Hub``, so depending on which script wins the race the page
#:    throws ``Cannot read properties of undefined (reading 'Queue')``.  We give every object
#:    assigned to ``window.MathJax`` a hidden ``Hub.Queue`` that forwards to MathJax 3's
#:    ``typesetPromise``.
#: 3. The theme's Font Awesome 6 (SVG + JS, ``scripts/fontawesome.js``) replaces every
#:    ``<i class="fa ...">`` on the page by an ``<svg>``, the Play button's icon included. The Play
#:    view of ``@jupyter-widgets/controls`` 5 (html-manager 1.0.15) later sets
#:    ``playPauseButton.getElementsByTagName("i")[0].className``: on the first click that ``<i>`` is
#:    gone, it throws ``Cannot set properties of undefined (setting 'className')`` before it starts
#:    the animation, and Play does nothing.  We replace ``PlayView.prototype.updatePlaying`` by one
#:    that sets the ``<i>`` if it is there and otherwise puts a new ``<i>`` in the button (Font
#:    Awesome turns it into the play or pause ``<svg>``).
REQUIRE_CONFIG = """var require = (function () {
  var lib = (document.documentElement.dataset.content_root || "./") + "_static/html-manager";
  var paths = {"@jupyter-widgets/html-manager/dist": lib};
  ["html-manager", "controls", "controls7", "base", "base7"].forEach(function (m) {
    paths["@jupyter-widgets/" + m] = lib + "/" + m; });
  return {paths: paths};
})();
(function () {
  function addHub(mj) {
    if (mj && typeof mj === "object" && !("Hub" in mj)) {
      Object.defineProperty(mj, "Hub", {configurable: true, enumerable: false, value: {
        Queue: function (job) {
          var el = Array.isArray(job) ? job[2] : undefined, m = window.MathJax;
          if (m && m.typesetPromise) { m.typesetPromise(el ? [el] : undefined).catch(function () {}); }
        }}});
    }
    return mj;
  }
  var current = addHub(window.MathJax);
  Object.defineProperty(window, "MathJax", {configurable: true, enumerable: true,
    get: function () { return current; }, set: function (v) { current = addHub(v); }});
})();
document.addEventListener("DOMContentLoaded", function () {
  if (typeof window.require !== "function") { return; }
  window.require(["@jupyter-widgets/controls"], function (controls) {
    var view = controls && controls.PlayView && controls.PlayView.prototype;
    if (!view || view.updatePlaying.courseIconFix) { return; }
    view.updatePlaying = function () {
      var name = this.model.get("playing") ? "pause" : "play", button = this.playPauseButton;
      var icon = button.getElementsByTagName("i")[0], svg = button.querySelector("svg[data-icon]");
      if (icon) { icon.className = "fa fa-" + name; return; }
      if (svg && svg.getAttribute("data-icon") === name) { return; }
      icon = document.createElement("i");
      icon.className = "fa fa-" + name;
      button.replaceChildren(icon);
    };
    view.updatePlaying.courseIconFix = true;
  });
});"""


def add_require_config(scripts: list, make_script: Any) -> list:
    """Insert :data:`REQUIRE_CONFIG` right before a local ``require/require.js``, if the page loads one.

    Parameters
    ----------
    scripts : list
        The page's script entries (Sphinx ``_JavaScript`` objects or file names), in page order.
    make_script : callable
        ``make_script(priority) -> entry`` builds the inline script entry.
    """
    names = [str(getattr(s, "filename", s) or "") for s in scripts]
    hits = [i for i, n in enumerate(names) if n.endswith("require/require.js") and "://" not in n]
    if not hits or any(REQUIRE_CONFIG in str(getattr(s, "attributes", {}).get("body", "")) for s in scripts):
        return scripts
    i = hits[0]
    return scripts[:i] + [make_script(getattr(scripts[i], "priority", 500))] + scripts[i:]


def _page_context(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if scripts:
        from sphinx.builders.html._assets import _JavaScript

        fixed = add_require_config(
            dedupe_scripts(list(scripts)),
            lambda priority: _JavaScript("", body=REQUIRE_CONFIG, priority=priority),
        )
        scripts[:] = fixed  # in place: the builder restores the list after the page


def _config_inited(app: Sphinx, config: Config) -> None:
    context = dict(config.html_context or {})  # pydata-sphinx-theme reads it from html_context
    context.setdefault("default_mode", "auto")
    config.html_context = context
    options = dict(config.html_theme_options or {})
    # sphinx-book-theme 1.3 means "no top navbar" (its sidebar has the search field); with
    # pydata-sphinx-theme 0.17 its empty default still renders a navbar holding a second search
    # field above every page. An empty list switches that navbar off.
    options.setdefault("navbar_persistent", [])
    config.html_theme_options = options


def write_index_redirect(app: Sphinx, exception: Exception | None) -> None:
    """Write ``index.html`` as a redirect to the root page that also names the favicon.

    sphinx-external-toc writes a bare ``<meta http-equiv="Refresh">`` when ``index.html`` is
    missing; a page without a ``<link rel="icon">`` makes the browser request ``/favicon.ico``,
    a 404 in the console of the book's front door.  Runs before that handler, which then
    leaves the existing file alone.
    """
    if exception is not None or app.builder.format != "html":
        return
    index = Path(app.outdir) / "index.html"
    root = app.config.root_doc
    if root == "index" or (index.exists() and "http-equiv" not in index.read_text(encoding="utf8")):
        return
    favicon = app.config.html_favicon
    icon = (
        f'<link rel="icon" href="_static/{Path(favicon).name}">' if favicon and "://" not in favicon else ""
    )
    index.write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{app.config.html_title or app.config.project}</title>{icon}"
        f'<meta http-equiv="Refresh" content="0; url={root}.html"></head>\n'
        f'<body><p><a href="{root}.html">Continue to the book</a></p></body></html>\n',
        encoding="utf8",
    )


def setup(app: Sphinx) -> dict:
    # MathJax on every page, not only on pages whose body has math: the navigation sidebar shows
    # every chapter title, and a title with math (e.g. "fit $k_1, k_2, k_3$") would otherwise stay
    # raw TeX on the pages without math (search, index, bibliography).
    app.set_html_assets_policy("always")
    app.connect("config-inited", _config_inited, priority=100)
    # After every extension that adds page scripts (they use the default priority 500).
    app.connect("html-page-context", _page_context, priority=999)
    app.connect("build-finished", write_index_redirect, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
