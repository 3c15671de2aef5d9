"""One switch, ``repository.url``, for every button that points outside the book.

Jupyter Book and sphinx-book-theme provide the buttons themselves: ``repository:`` (url, branch,
path_to_book) gives the theme its repository, ``launch_buttons:`` lists the services (Binder,
Colab), and the theme's defaults already keep the edit, source and Thebe buttons off and the
download buttons (.ipynb, source, PDF) on.  What those options cannot do, and this extension adds
at ``config-inited`` (before the theme reads the options):

1. **No repository, no outside button.**  While ``url`` is ``""`` (a private copy) the launch
   providers are dropped: with a provider and no repository, sphinx-book-theme 1.3 stops the
   build on the first notebook page ("Extension error (sphinx_book_theme.header_buttons.launch):
   TypeError: cannot unpack non-iterable NoneType object").
2. **A repository, its buttons.**  Once ``url`` is set, the repository and issue buttons are
   switched on.  Jupyter Book's own ``html.use_repository_button`` / ``use_issues_button``
   would be a second switch, and one that stops the build ("you must specify the repository
   URL") in every copy whose url is empty.
3. **A usable URL.**  ``https://github.com/<owner>/<repo>`` or the gitlab.com equivalent, a
   trailing ``/`` or ``.git`` removed; anything else stops the build with the fix (the theme
   takes any string and builds broken links from it).  On GitLab the GitHub-only Colab and
   Deepnote buttons are dropped (the theme warns "not supported on colab", an error under -W).

The assignment pages lose their launch buttons in ``student_pages.py``.
"""

from __future__ import annotations

import re
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: Theme options that only make sense with a repository (the theme's defaults are off).
REPOSITORY_BUTTONS = ("use_repository_button", "use_issues_button")
#: ``launch_buttons`` keys that name an online service; dropped while no repository is set.
LAUNCH_PROVIDERS = ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url", "jupyterlite_url")
#: Providers that only work with a GitHub repository (the theme warns otherwise).
GITHUB_ONLY = ("colab_url", "deepnote_url")

_URL = re.compile(
    r"^https://(?P<host>github\.com|gitlab\.com)/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+?)(\.git)?/?$"
)


def normalize_repository_url(url: str | None) -> tuple[str, str]:
    """Check ``repository.url`` and return ``(clean_url, host)``; ``("", "")`` when unset.

    Parameters
    ----------
    url : str or None
        The value of ``repository.url`` in ``_config.yml``.

    Returns
    -------
    tuple of str
        The URL without a trailing ``/`` or ``.git``, and its host (``"github.com"`` or
        ``"gitlab.com"``); two empty strings when ``url`` is empty or only blanks.

    Raises
    ------
    sphinx.errors.ConfigError
        If ``url`` is not ``https://github.com/<owner>/<repo>`` or ``https://gitlab.com/<owner>/<repo>``.
    """
    if url is None:
        return "", ""
    if not isinstance(url, str):
        raise ConfigError(
            f"repository.url in _config.yml must be a string, got {type(url).__name__}: "
            'write it in quotes, e.g. url: "https://github.com/<owner>/<repo>", or leave it "".'
        )
    url = url.strip()
    if not url:
        return "", ""
    match = _URL.match(url)
    if match is None:
        raise ConfigError(
            f"repository.url in _config.yml is {url!r}, which is not a repository address: "
            "use https://github.com/<owner>/<repo> (or https://gitlab.com/<owner>/<repo>), "
            'or leave it "" to switch the repository, issue and launch buttons off.'
        )
    return f"https://{match['host']}/{match['owner']}/{match['repo']}", match["host"]


def configure_buttons(theme_options: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``html_theme_options`` whose outside buttons follow ``repository_url``.

    Parameters
    ----------
    theme_options : dict
        ``html_theme_options`` as Jupyter Book produced it from ``_config.yml``
        (``repository_url``, ``launch_buttons``, ...).

    Returns
    -------
    dict
        The options with the URL cleaned and the repository and issue buttons on when it is set;
        without the launch providers when it is not, and without the GitHub-only ones off GitHub.
        Every other option is left as Jupyter Book and the theme set it.

    Raises
    ------
    sphinx.errors.ConfigError
        If the repository URL is malformed (see :func:`normalize_repository_url`) or
        ``launch_buttons`` is not a mapping.
    """
    options = dict(theme_options or {})
    url, host = normalize_repository_url(options.get("repository_url"))
    launch = options.get("launch_buttons") or {}
    if not isinstance(launch, dict):
        raise ConfigError(
            "launch_buttons in _config.yml must be a mapping (binderhub_url: ..., colab_url: ...), "
            f"got {type(launch).__name__}."
        )
    dropped = LAUNCH_PROVIDERS if not url else GITHUB_ONLY if host != "github.com" else ()
    options["launch_buttons"] = {k: v for k, v in launch.items() if k not in dropped}
    options["repository_url"] = url
    for key in REPOSITORY_BUTTONS:
        options[key] = bool(url)
    return options


def _on_config_inited(app: Sphinx, config: Config) -> None:
    config.html_theme_options = configure_buttons(config.html_theme_options)
    opts = config.html_theme_options
    providers = [k for k in LAUNCH_PROVIDERS if opts["launch_buttons"].get(k)]
    logger.info(
        "repository_buttons: %s",
        f"repository and issue buttons for {opts['repository_url']}; launch buttons: "
        f"{', '.join(providers) or 'none'}"
        if opts["repository_url"]
        else "repository.url is empty in _config.yml; no repository, issue or launch button",
    )


def setup(app: Sphinx) -> dict:
    # Before sphinx-book-theme reads the options (builder-inited).
    app.connect("config-inited", _on_config_inited, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
