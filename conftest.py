"""Repository-wide pytest configuration.

Without torch (it is optional), the doctests of the torch-only modules in
``xsam_theory/torch/`` cannot be imported, so they are not collected; the torch tests in
``tests/`` skip themselves (``pytest.importorskip``).
"""

from __future__ import annotations

import importlib.util


def _have_torch() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["torch"] is None
        return False


collect_ignore_glob = [] if _have_torch() else ["xsam_theory/torch/*"]
