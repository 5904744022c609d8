"""bayeskit: exact, readable, tested reference implementations of Bayesian machine learning.

Importing bayeskit enables float64 in JAX (see :mod:`bayeskit._config`). Subpackages, one per
method family: ``bayeskit.kernels`` and ``bayeskit.gp`` (Gaussian processes), ``bayeskit.bo``
(Bayesian optimisation), ``bayeskit.filters`` (Kalman and discriminative filters),
``bayeskit.vae`` and ``bayeskit.flows`` (VAEs and normalizing flows), ``bayeskit.bll`` (Bayesian
last layers); shared: ``bayeskit.plot``, ``bayeskit.data``, ``bayeskit.linalg``. The Jupyter
explorers live in ``bayeskit.widgets`` (imported separately: the maths never imports UI code).
"""

from . import _config  # noqa: F401  (float64 and the compilation cache, at import)
from ._config import fast_mode
from .doctor import doctor

__version__ = "0.1.0"
__all__ = ["doctor", "fast_mode", "__version__"]
