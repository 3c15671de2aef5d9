"""One switch for every button that points outside the book: ``repository.url``.

In ``_config.yml``::

    repository:
      url: ""            # e.g. https://github.com/<owner>/<repo>
      branch: main

While ``url`` is empty (the default, e.g. in a private copy), the book shows **no**
repository, issue or launch button and none of their links or warnings: the download
buttons (.ipynb, source) stay on, since they need nothing but the book itself.

Once ``url`` names a public GitHub (or GitLab) repository, every page gets a repository
button and an "open an issue" button, and every notebook page gets the launch buttons
listed under ``launch_buttons`` (Binder, Colab) pointing at that repository and branch.
The extension makes the theme options consistent with the URL at ``config-inited``,
before the theme reads them; an unusable URL stops the build with a message that says
what is wrong and how to fix it.
"""
from __future__ import annotations

import re
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: Theme options that only make sense with a repository.
REPOSITORY_BUTTONS = ("use_repository_button", "use_issues_button")
#: Buttons that also need the repository but stay off (not asked for by the course).
ALWAYS_OFF = ("use_edit_page_button", "use_source_button")
#: ``launch_buttons`` keys that name an online service; cleared while no repository is set.
LAUNCH_PROVIDERS = ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url", "jupyterlite_url")
#: Providers that only work with a GitHub repository (the theme warns otherwise).
GITHUB_ONLY = ("colab_url", "deepnote_url")

_URL = re.compile(r"^https://(?P<host>github\.com|gitlab\.com)/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+?)(\.git)?/?$")


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
            "write it in quotes, e.g. url: \"https://github.com/<owner>/<repo>\", or leave it \"\"."
        )
    url = url.strip()
    if not url:
        return "", ""
    match = _URL.match(url)
    if match is None:
        raise ConfigError(
            f"repository.url in _config.yml is {url!r}, which is not a repository address: "
            "use https://github.com/<owner>/<repo> (or https://gitlab.com/<owner>/<repo>), "
            "or leave it \"\" to switch the repository, issue and launch buttons off."
        )
    clean = f"https://{match['host']}/{match['owner']}/{match['repo']}"
    return clean, match["host"]


def configure_buttons(theme_options: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``html_theme_options`` whose buttons agree with ``repository_url``.

    Parameters
    ----------
    theme_options : dict
        ``html_theme_options`` as Jupyter Book produced it from ``_config.yml``
        (``repository_url``, ``repository_branch``, ``launch_buttons``, ...).

    Returns
    -------
    dict
        The options with the repository/issue buttons and the launch providers on when the
        URL is set, and all of them off (providers cleared) when it is not.

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
            f"launch_buttons in _config.yml must be a mapping (binderhub_url: ..., colab_url: ...), "
            f"got {type(launch).__name__}."
        )
    launch = dict(launch)
    for key in ALWAYS_OFF:
        options[key] = False
    if not url:
        options.pop("repository_url", None)
        for key in REPOSITORY_BUTTONS:
            options[key] = False
        for key in LAUNCH_PROVIDERS:
            launch.pop(key, None)
        launch["thebe"] = False
    else:
        options["repository_url"] = url
        options["repository_branch"] = options.get("repository_branch") or "main"
        for key in REPOSITORY_BUTTONS:
            options[key] = True
        if host != "github.com":
            for key in GITHUB_ONLY:
                launch.pop(key, None)
    options["launch_buttons"] = launch
    return options


def _on_config_inited(app: Sphinx, config: Config) -> None:
    config.html_theme_options = configure_buttons(config.html_theme_options)
    opts = config.html_theme_options
    if opts.get("repository_url"):
        providers = [k for k in LAUNCH_PROVIDERS if opts["launch_buttons"].get(k)]
        logger.info(
            "repository_buttons: repository and issue buttons for %s (branch %s); launch buttons: %s",
            opts["repository_url"], opts["repository_branch"], ", ".join(providers) or "none",
        )
    else:
        logger.info(
            "repository_buttons: repository.url is empty in _config.yml; repository, issue and "
            "launch buttons are off (download buttons stay on)."
        )


def setup(app: Sphinx) -> dict:
    # Before sphinx-book-theme reads the options (builder-inited).
    app.connect("config-inited", _on_config_inited, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
