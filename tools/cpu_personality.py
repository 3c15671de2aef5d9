"""A second CPU personality for nbval: torch's kernels for another instruction set, on this CPU.

The stored outputs of the chapters must reproduce on any CPU that runs CI, not only on the one that
stored them. PyPI's torch picks its ATen kernels (``ATEN_CPU_CAPABILITY``) and oneDNN its
convolution and matmul kernels (``ONEDNN_MAX_CPU_ISA``) by the CPU's instruction set, so an Intel
Xeon (AVX-512) and an AMD EPYC (AVX2 or AVX-512) round differently in the last digits. Capping both
on the machine at hand gives it the round-off of another CPU: ``make nbval-cpu2`` runs strict nbval
under it, and a stored output that depends on the CPU fails there.

Usage (from the repository root)::

    python tools/cpu_personality.py            # KEY=VALUE pairs of the personality one below this CPU's
    python tools/cpu_personality.py avx2       # a named one: avx2 or default (SSE4.1 / no vector code)
    python tools/cpu_personality.py --describe # what this CPU runs natively, and what the pairs give

``env $(python tools/cpu_personality.py) python -m pytest --nbval ...`` applies it. Which one
``auto`` picks: AVX-512 (or AMX) natively -> ``avx2``; AVX2 natively -> ``default``; a CPU that
already runs the default kernels (no x86 vector extensions) has no lower personality, and the
script says so on stderr and exits 1 rather than run the same kernels twice under another name.
``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` are never touched: some machines set them to stay correct.
"""

from __future__ import annotations

import argparse
import sys

#: Each personality: the environment that caps torch's ATen and oneDNN kernels at one instruction set.
PERSONALITIES = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "default": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}


def native_capability() -> str:
    """The ATen kernel set torch picks on this CPU with no cap (``AVX512``, ``AVX2``, ``DEFAULT``, ...)."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability()).upper()


def pick(name: str, native: str) -> str:
    """The personality called ``name`` (``auto``: the one below ``native``).

    Raises
    ------
    ValueError
        If ``name`` is unknown, or ``auto`` finds no personality below ``native``.
    """
    if name == "auto":
        if native.startswith("AVX512") or native.startswith("AMX"):
            return "avx2"
        if native == "AVX2":
            return "default"
        raise ValueError(
            f"this CPU already runs torch's {native!r} kernels: there is no lower personality to "
            "compare with; run nbval on a machine with AVX2 or AVX-512"
        )
    if name not in PERSONALITIES:
        raise ValueError(f"unknown personality {name!r}: use auto, {', '.join(PERSONALITIES)}")
    return name


def main(argv: list[str] | None = None) -> int:
    """Print the chosen personality's ``KEY=VALUE`` pairs (or, with ``--describe``, a sentence)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", default="auto", help="auto (default), avx2 or default")
    parser.add_argument("--describe", action="store_true", help="say what is native and what is chosen")
    args = parser.parse_args(argv)
    native = native_capability()
    try:
        name = pick(args.name, native)
    except ValueError as exc:
        print(f"cpu_personality: {exc}", file=sys.stderr)
        return 1
    pairs = " ".join(f"{k}={v}" for k, v in PERSONALITIES[name].items())
    if args.describe:
        print(f"native kernels {native}; second personality {name!r}: {pairs}")
    else:
        print(pairs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
