"""The book's Sphinx extensions in _ext/: repository buttons, build report, page hygiene.

Fast unit tests (no Sphinx build); the built book itself is checked by tests/browser/. The
repository-button tests run the shipped _config.yml through Jupyter Book's own configuration
(get_final_config), so they check the buttons the book gets: Jupyter Book's and the theme's
defaults plus what _ext/repository_buttons.py adds.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from sphinx.errors import ConfigError, ExtensionError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))

import build_report  # noqa: E402
import page_hygiene  # noqa: E402
import repository_buttons  # noqa: E402
from repository_buttons import configure_buttons, normalize_repository_url  # noqa: E402

LAUNCH = {
    "notebook_interface": "jupyterlab",
    "binderhub_url": "https://mybinder.org",
    "colab_url": "https://colab.research.google.com",
}


def book_config(**repository) -> dict:
    """The Sphinx config Jupyter Book makes of the shipped _config.yml, ``repository:`` overridden."""
    from jupyter_book.config import get_final_config

    user = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    user["repository"].update(repository)
    config, _ = get_final_config(user_yaml=user, sourcedir=ROOT, cli_config={"latex_individualpages": False})
    return config


def book_buttons(**repository) -> dict:
    """The theme options the book's pages get: Jupyter Book's, then the extension's."""
    return configure_buttons(book_config(**repository)["html_theme_options"])


# -- repository_buttons -----------------------------------------------------------------------------


def test_unset_url_switches_every_outside_button_off():
    opts = book_buttons()  # the shipped _config.yml: url ""
    assert opts["repository_url"] == ""
    assert opts["use_repository_button"] is False and opts["use_issues_button"] is False
    # the edit, source and Thebe buttons are off by Jupyter Book's and the theme's defaults
    assert opts.get("use_edit_page_button", False) is False and opts.get("use_source_button", False) is False
    assert not opts["launch_buttons"].get("thebe")
    assert "binderhub_url" not in opts["launch_buttons"] and "colab_url" not in opts["launch_buttons"]
    assert opts["launch_buttons"]["notebook_interface"] == "jupyterlab"
    assert opts.get("use_download_button", True) is True  # downloads need no repository


@pytest.mark.parametrize("url", [None, "", "   "])
def test_blank_urls_count_as_unset(url):
    opts = configure_buttons({"repository_url": url, "launch_buttons": dict(LAUNCH)})
    assert opts["use_repository_button"] is False and opts["repository_url"] == ""
    assert not any(opts["launch_buttons"].get(k) for k in repository_buttons.LAUNCH_PROVIDERS)


def test_github_url_switches_repository_issue_and_launch_buttons_on():
    opts = book_buttons(url="https://github.com/owner/course.git/")
    assert opts["repository_url"] == "https://github.com/owner/course"
    assert opts["repository_branch"] == "main"  # _config.yml's repository.branch
    assert opts["use_repository_button"] is True and opts["use_issues_button"] is True
    assert opts["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert opts["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert opts.get("use_edit_page_button", False) is False  # not asked for by the course


def test_gitlab_url_keeps_binder_but_drops_colab():
    opts = book_buttons(url="https://gitlab.com/owner/course", branch="dev")
    assert opts["repository_branch"] == "dev"
    assert "colab_url" not in opts["launch_buttons"]  # the theme would warn (and -W fail) otherwise
    assert opts["launch_buttons"]["binderhub_url"] == "https://mybinder.org"


def test_input_options_are_not_mutated():
    given = {"repository_url": "", "launch_buttons": dict(LAUNCH)}
    configure_buttons(given)
    assert given == {"repository_url": "", "launch_buttons": LAUNCH}


@pytest.mark.parametrize(
    "url",
    [
        "github.com/owner/course",
        "https://github.com/owner",
        "https://example.org/owner/course",
        "http://github.com/owner/course",
        "https://github.com/owner/course/tree/main",
    ],
)
def test_malformed_url_stops_the_build_with_the_fix(url):
    with pytest.raises(
        ConfigError, match=r"repository\.url in _config\.yml .* use https://github\.com/<owner>/<repo>"
    ):
        normalize_repository_url(url)


def test_non_string_url_is_rejected():
    with pytest.raises(ConfigError, match="must be a string, got int"):
        normalize_repository_url(42)  # type: ignore[arg-type]


def test_launch_buttons_must_be_a_mapping():
    with pytest.raises(ConfigError, match="launch_buttons in _config.yml must be a mapping"):
        configure_buttons({"repository_url": "", "launch_buttons": ["binder"]})


def test_jupyter_book_alone_cannot_switch_the_buttons_with_the_url():
    """Why the extension switches the repository buttons: Jupyter Book's own option refuses an empty url."""
    with pytest.raises(ValueError, match="you must specify the repository URL"):
        from jupyter_book.config import get_final_config

        user = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
        user["html"]["use_repository_button"] = True
        get_final_config(user_yaml=user, sourcedir=ROOT)


def test_config_yml_loads_the_extensions_and_sphinx_duration():
    config = book_config()
    for name in (
        "repository_buttons",
        "build_report",
        "page_hygiene",
        "offline_assets",
        "student_pages",
        "sphinx.ext.duration",
    ):
        assert name in config["extensions"], f"{name} is not loaded by _config.yml"


# -- build_report -----------------------------------------------------------------------------------


def test_site_size_counts_files_and_pages(tmp_path):
    (tmp_path / "a.html").write_bytes(b"x" * 1000)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.html").write_bytes(b"y" * 24)
    (tmp_path / "sub" / "c.js").write_bytes(b"z" * 100)
    assert build_report.site_size(tmp_path) == (1124, 3, 2)


def test_site_size_of_a_missing_folder_says_to_build(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist: build the book"):
        build_report.site_size(tmp_path / "html")


def test_report_names_the_slowest_page():
    text = build_report.format_report(3 * 2**20, 10, 4, {"ch1": 0.75, "ch2": 1.5, "intro": 0.1})
    lines = text.splitlines()
    assert lines[0] == "Built site: 3.0 MiB in 10 files (4 HTML pages)."
    assert lines[1] == "Slowest page to read: ch2 (1.50 s)."
    assert lines[2] == "Next slowest: ch1 0.75 s, intro 0.10 s."


def test_report_without_timings_says_so():
    assert "no page was read" in build_report.format_report(0, 0, 0, {})


def test_report_top_must_be_positive():
    with pytest.raises(ValueError, match="top must be at least 1"):
        build_report.format_report(0, 0, 0, {}, top=0)


def test_budget_is_45_mib_and_a_bigger_site_is_named():
    assert build_report.SITE_BUDGET_MIB == 45
    assert build_report.over_budget(45 * 2**20, 45) is None
    message = build_report.over_budget(45 * 2**20 + 1, 45)
    assert message.startswith("the built site is 45.0 MiB, over its budget of 45 MiB")


@pytest.mark.parametrize("budget", [0, -1, "45", True, float("nan")])
def test_budget_must_be_a_positive_number(budget):
    with pytest.raises(ValueError, match="site_budget_mib must be a positive number"):
        build_report.over_budget(1, budget)


def _finished_app(outdir, budget, durations=None):
    """A stand-in for the Sphinx app at build-finished: the output folder, the config, the env."""

    def get_domain(name):
        if durations is None:
            raise ExtensionError(f"Domain {name!r} is not registered")
        return SimpleNamespace(reading_durations=durations)

    return SimpleNamespace(
        outdir=str(outdir),
        builder=SimpleNamespace(format="html"),
        config=SimpleNamespace(site_budget_mib=budget),
        env=SimpleNamespace(get_domain=get_domain),
    )


def test_build_finished_writes_the_report_with_duration_times_and_warns_over_budget(tmp_path, caplog):
    html = tmp_path / "html"
    html.mkdir()
    (html / "page.html").write_bytes(b"x" * 2**20)  # 1 MiB
    with caplog.at_level(logging.INFO):
        build_report._build_finished(_finished_app(html, 45, {"ch1": 0.5}), None)
    report = (tmp_path / "build_report.txt").read_text()
    assert report == "Built site: 1.0 MiB in 1 files (1 HTML pages).\nSlowest page to read: ch1 (0.50 s).\n"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    caplog.clear()
    build_report._build_finished(_finished_app(html, 0.5), None)  # no sphinx.ext.duration: no times
    assert "no page was read" in (tmp_path / "build_report.txt").read_text()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings and "over its budget of 0.5 MiB" in warnings[0]


# -- page_hygiene -----------------------------------------------------------------------------------


def test_dedupe_drops_the_second_identical_inline_script():
    from sphinx.builders.html._assets import _JavaScript

    body = 'const THEBE_JS_URL = "x"'
    scripts = [
        _JavaScript("_static/a.js"),
        _JavaScript(None, body=body),
        _JavaScript("", body=body),
        _JavaScript("_static/a.js"),
        _JavaScript("", body="other"),
    ]
    out = page_hygiene.dedupe_scripts(scripts)
    assert [(s.filename or "", s.attributes.get("body")) for s in out] == [
        ("_static/a.js", None),
        ("", body),
        ("", "other"),
    ]


def test_require_config_goes_right_before_local_require_js():
    from sphinx.builders.html._assets import _JavaScript

    make = lambda priority: _JavaScript("", body=page_hygiene.REQUIRE_CONFIG, priority=priority)  # noqa: E731
    scripts = [
        _JavaScript("_static/a.js"),
        _JavaScript("_static/require/require.js", priority=500),
        _JavaScript("_static/html-manager/embed-amd.js"),
    ]
    out = page_hygiene.add_require_config(scripts, make)
    assert len(out) == 4 and out[1].attributes["body"] == page_hygiene.REQUIRE_CONFIG
    assert out[2].filename.endswith("require/require.js")
    assert page_hygiene.add_require_config(out, make) == out  # idempotent


def test_no_require_config_without_local_require_js():
    from sphinx.builders.html._assets import _JavaScript

    cdn = [_JavaScript("https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.4/require.min.js")]
    assert page_hygiene.add_require_config(cdn, lambda p: None) == cdn
    assert page_hygiene.add_require_config([], lambda p: None) == []


# --- page_hygiene.write_index_redirect ----------------------------------------------------


def _fake_app(outdir, favicon="_ext/favicon.svg"):
    from types import SimpleNamespace

    config = SimpleNamespace(root_doc="intro", html_favicon=favicon, html_title="The Book", project="x")
    return SimpleNamespace(outdir=str(outdir), config=config, builder=SimpleNamespace(format="html"))


def test_index_redirect_names_the_favicon(tmp_path):
    (tmp_path / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=intro.html" />\n')
    page_hygiene.write_index_redirect(_fake_app(tmp_path), None)
    html = (tmp_path / "index.html").read_text()
    assert '<link rel="icon" href="_static/favicon.svg">' in html
    assert 'content="0; url=intro.html"' in html and "<title>The Book</title>" in html


def test_index_redirect_never_overwrites_a_real_index_page(tmp_path):
    (tmp_path / "index.html").write_text("<html><body>a real page</body></html>")
    page_hygiene.write_index_redirect(_fake_app(tmp_path), None)
    assert (tmp_path / "index.html").read_text() == "<html><body>a real page</body></html>"


def test_index_redirect_skipped_after_a_failed_build(tmp_path):
    page_hygiene.write_index_redirect(_fake_app(tmp_path), RuntimeError("build failed"))
    assert not (tmp_path / "index.html").exists()
