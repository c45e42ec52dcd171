"""``python -m ecc_tensor.sweep``: the Monte Carlo sweep (see ecc_tensor.evaluation.sweep)."""

import sys

from .evaluation.sweep import main

if __name__ == "__main__":
    sys.exit(main())
