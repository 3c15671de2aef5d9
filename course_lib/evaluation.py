"""Temporary aliases: ``course_lib.evaluation`` was split into four modules (issue 15).

* :mod:`course_lib.scores` -- accuracy, NLL, entropy, confidence, calibration
  (``check_probs`` is now :func:`course_lib.scores.validate_probs`);
* :mod:`course_lib.prediction` -- :func:`~course_lib.prediction.predict`;
* :mod:`course_lib.ensemble` -- the Monte Carlo ensemble over q(W);
* :mod:`course_lib.ood` -- rotated digits and noise images.

The old names work until every chapter calls the new ones; this module is then deleted.
"""

from __future__ import annotations

from course_lib.ensemble import (  # noqa: F401
    MC_MODES,
    ensemble_curve,
    ensemble_predictions,
    mc_predict,
    mc_samples,
    sample_weights,
)
from course_lib.ood import noise_images, rotate_images  # noqa: F401
from course_lib.prediction import predict  # noqa: F401
from course_lib.scores import (  # noqa: F401
    LOG_EPS,
    PROB_ATOL,
    ReliabilityCurve,
    Scores,
    accuracy,
    confidence,
    expected_calibration_error,
    nll,
    predictive_entropy,
    reliability_curve,
    score,
)
from course_lib.scores import validate_probs as check_probs  # noqa: F401
