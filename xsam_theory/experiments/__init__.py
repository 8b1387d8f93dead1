"""Experiments: the runs and measurements behind the claims ledger and the figures.

Nothing here judges: a module runs its optimizers, measures what a claim or a figure needs and
returns plain records (arrays, dicts of numbers). :mod:`xsam_theory.claims` turns those records
into verdicts; :mod:`xsam_theory.figures` draws them. Importing this package registers nothing.

* :mod:`~xsam_theory.experiments.context`: :class:`ExperimentContext` (scale, seed, backend).
* :mod:`~xsam_theory.experiments.loops`: step loops with a fixed eigenvector, per-step
  perturbations, backend placement.
* :mod:`~xsam_theory.experiments.sweep`: a grid of runs through the sweep runner.
* one module per experiment of a paper claim (``generalization``, ``convergence``,
  ``lambda_max``, ``angle``) and of the F-POWER finding (``power_quality``).
"""

from xsam_theory.experiments.context import SCALES, ExperimentContext

__all__ = ["SCALES", "ExperimentContext"]
