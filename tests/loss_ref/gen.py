"""python3 tests/loss_ref/gen.py METHOD OUT_DIR: writes the METHOD's loss cases
(tests/loss_ref/METHOD.py defines CASES) for tests/test_losses.c."""
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

if len(sys.argv) != 3:
    sys.exit(__doc__)
mod = importlib.import_module(sys.argv[1])
common.run_cases(mod.CASES, sys.argv[2])
