"""Make the checkout importable as ansible_collections.hpc.slurm (collections/ links back to it)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collections"))
