"""Jinja test for what hpc.slurm.host_state reports: `found is hpc.slurm.in_state(wanted)`."""

from __future__ import annotations

from collections.abc import Mapping


def in_state(found, wanted):
    """True when the path described by host_state has every attribute of `wanted` with that value
    (an absent path has none of them)."""
    if not isinstance(found, Mapping) or not isinstance(wanted, Mapping):
        raise TypeError(f"in_state compares two mappings, got {type(found).__name__} and {type(wanted).__name__}")
    return all(key in found and found[key] == value for key, value in wanted.items())


class TestModule:
    def tests(self):
        return {"in_state": in_state}
