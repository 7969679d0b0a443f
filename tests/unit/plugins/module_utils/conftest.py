"""Real Slurm command runs recorded by tests/unit/fixtures/transcripts/record.py, one set per
Slurm release (Debian 12: 22.05, Debian 13: 24.11); tests using `transcripts` run on each."""
from pathlib import Path

import pytest
import yaml

TRANSCRIPT_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "transcripts"
VERSIONS = sorted(path.stem for path in TRANSCRIPT_DIR.glob("debian*.yaml"))


@pytest.fixture(params=VERSIONS)
def transcripts(request):
    document = yaml.safe_load((TRANSCRIPT_DIR / f"{request.param}.yaml").read_text())
    return {run["name"]: run for run in document["runs"]}
