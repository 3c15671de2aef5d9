"""Numbers for the book's prose: myst-nb's ``glue`` where it is installed, a stand-in elsewhere.

The chapters paste the numbers their cells compute into the text with myst-nb's ``glue``
(``glue("ch7-ms-per-value", value, display=False)`` in the cell, ``{glue:text}`ch7-ms-per-value:.2f```
in the markdown), so re-running a chapter updates its prose.  The book build, CI and ``make lab``
have myst-nb (``requirements.txt``); a student's Colab or plain ``pip install`` of the course does
not, and the markdown roles are not rendered there anyway.  Importing :func:`glue` from here
instead of from ``myst_nb`` lets every chapter run in both: with myst-nb it *is* ``myst_nb.glue``
(the stored outputs the book reads are the same); without it the value is shown (``display=True``)
or nothing happens (``display=False``).

Examples
--------
>>> from course_lib.glue import glue
>>> glue("ch0-answer", 42, display=False)  # stored for the book with myst-nb, silent without
"""

from __future__ import annotations

__all__ = ["glue", "HAVE_MYST_NB"]

try:
    from myst_nb import glue
except ImportError:  # Colab, a plain pip install: no book to paste into
    HAVE_MYST_NB = False

    def glue(name: str, variable: object, display: bool = True) -> None:
        """Stand-in for ``myst_nb.glue`` where myst-nb is not installed: show ``variable`` if ``display``.

        Parameters
        ----------
        name : str
            The key the book's markdown would paste (checked to be a string, as myst-nb does).
        variable : object
            The value.
        display : bool, default True
            Show the value in the cell's output, as ``myst_nb.glue`` does.

        Raises
        ------
        TypeError
            If ``name`` is not a string.
        """
        if not isinstance(name, str):
            raise TypeError(f"glue name must be a string (the key the markdown pastes), got {name!r}.")
        if display:
            from IPython.display import display as show

            show(variable)
else:
    HAVE_MYST_NB = True
