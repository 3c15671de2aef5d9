"""course_lib — the small library behind *Deep Neural Networks: A Bayesian Perspective*.

Every chapter starts with::

    import course_lib
    course_lib.setup(seed=0)

which seeds Python, NumPy and torch, picks the device and sets the figure style.
The modules follow the course, one idea each: ``probability``, ``data``, ``plots``,
``widgets``, ... (see the book's introduction for the full map).
"""

from course_lib.runtime import Setup, setup

__all__ = ["Setup", "setup"]
__version__ = "0.1.0"
