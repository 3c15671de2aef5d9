"""Serve MathJax 3, require.js and the ipywidgets HTML manager from the built book.

``make vendor`` (run by ``make book``) fetches the three npm packages into the
git-ignored folder ``_vendor/``.  When that folder is complete, this extension
points Sphinx and MyST-NB at the local copies, which Sphinx copies into the
book's ``_static/``; the book then renders math and widgets with no network.
When it is not (npm was unavailable), the CDN defaults stay and the build says so.

``_vendor/`` is deliberately *not* named ``_static/``: Jupyter Book injects every
``.js`` file under ``_static/`` into every page.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

VENDOR = "_vendor"
#: Files that must exist under _vendor/ for the offline set-up (relative paths).
REQUIRED = {
    "mathjax": "mathjax/tex-chtml.js",
    "require": "require/require.js",
    "widgets": "html-manager/embed-amd.js",
}


def _configure(app: Sphinx, config) -> None:
    vendor = Path(app.srcdir) / VENDOR
    missing = [rel for rel in REQUIRED.values() if not (vendor / rel).is_file()]
    if missing:
        # Not a warning: the book still builds (with -W) and works online.
        logger.info(
            "offline_assets: %s lacks %s; MathJax, require.js and the widget manager will load "
            "from CDNs. Run `make vendor` (needs npm) for a fully offline book.",
            vendor,
            ", ".join(missing),
        )
        return
    config.html_static_path = list(config.html_static_path) + [str(vendor)]
    config.mathjax_path = REQUIRED["mathjax"]
    # Relative names are served from the book's _static/ folder.
    config.nb_ipywidgets_js = {
        REQUIRED["require"]: {},
        REQUIRED["widgets"]: {
            # Only the built-in widget modules are used; nothing is fetched from a CDN.
            "data-jupyter-widgets-cdn": "_static/html-manager/",
        },
    }
    logger.info("offline_assets: serving MathJax, require.js and the widget manager from %s", vendor)


def setup(app: Sphinx) -> dict:
    # Run before MyST-NB and MathJax read their settings.
    app.connect("config-inited", _configure, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
