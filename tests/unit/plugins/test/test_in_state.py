"""The hpc.slurm.in_state test on what hpc.slurm.host_state reports."""
import pytest
from ansible_collections.hpc.slurm.plugins.test.host_state import in_state

FOUND = {"exists": True, "type": "directory", "owner": "slurm", "group": "slurm", "mode": "0750"}


def test_every_wanted_attribute_must_match():
    assert in_state(FOUND, {"type": "directory", "owner": "slurm", "mode": "0750"})
    assert not in_state(FOUND, {"type": "directory", "owner": "slurm", "mode": "0700"})


def test_an_absent_path_is_in_no_state():
    assert not in_state({"exists": False}, {"type": "directory"})


def test_a_file_without_the_wanted_checksum_is_not_in_state():
    assert not in_state({"exists": True, "type": "file", "mode": "0644"}, {"type": "file", "sha256": "ab"})


def test_anything_but_two_mappings_is_an_error():
    with pytest.raises(TypeError, match="two mappings"):
        in_state("/var/log/slurm", {"type": "directory"})
