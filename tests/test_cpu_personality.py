"""tools/cpu_personality.py picks the second CPU personality of `make nbval-cpu2`, and it is in force.

The second nbval pass proves that the stored outputs do not depend on the CPU that stored them. It
only proves something if the personality really is another one: below this CPU's own kernels, and
applied to the processes that run the notebooks (torch reads ``ATEN_CPU_CAPABILITY`` at import).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import cpu_personality  # noqa: E402
from chapter_spread import shift_seeds  # noqa: E402


@pytest.mark.parametrize(("native", "expected"), [("AVX512", "avx2"), ("AMX", "avx2"), ("AVX2", "default")])
def test_auto_picks_the_personality_below_the_native_one(native, expected):
    assert cpu_personality.pick("auto", native) == expected


def test_a_cpu_without_vector_kernels_has_no_lower_personality():
    with pytest.raises(ValueError, match="no lower personality"):
        cpu_personality.pick("auto", "DEFAULT")


def test_an_unknown_name_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown personality 'avx3': use auto, avx2, default"):
        cpu_personality.pick("avx3", "AVX512")


@pytest.mark.slow  # two fresh torch imports
def test_the_printed_pairs_set_torchs_kernels_in_a_child_process():
    """What `make nbval-cpu2` does: `env $(tools/cpu_personality.py NAME) python ...` caps the kernels."""
    for name, capability in (("avx2", "AVX2"), ("default", "DEFAULT")):
        pairs = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "cpu_personality.py"), name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert all("=" in pair for pair in pairs) and not any("OPENBLAS" in pair for pair in pairs), pairs
        probe = "import torch; print(torch.backends.cpu.get_cpu_capability())"
        seen = subprocess.run(
            ["env", *pairs, sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert seen == capability, (name, pairs, seen)


def test_the_command_line_says_why_it_refuses():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "cpu_personality.py"), "bogus"], capture_output=True, text=True
    )
    assert result.returncode == 1 and "unknown personality 'bogus'" in result.stderr


def test_the_spread_harness_shifts_training_seeds_but_not_the_data():
    source = (
        "SEED = 0\ncourse_lib.setup(seed=SEED)\nnet = train('lenet300', seed=0, epochs=4)\n"
        "torch.manual_seed(3)\nx = data(np.random.default_rng(0))\nfor seed in range(5): pass\n"
    )
    shifted, count = shift_seeds(source, 2)
    assert count == 3
    assert "SEED = 2" in shifted and "seed=2, epochs" in shifted and "manual_seed(5)" in shifted
    assert "default_rng(0)" in shifted and "seed=SEED" in shifted and "range(5)" in shifted
