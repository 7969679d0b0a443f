"""The inventory's groups are checked on localhost, before any cluster host is contacted.

The hosts below have unroutable TEST-NET addresses: reaching any of them would fail with
'unreachable' instead of the message we expect.
"""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

HOST = {"ansible_host": "192.0.2.1", "ansible_connection": "ssh"}
CASES = {
    "no controller": ({"slurmd": {"hosts": {"n1": HOST}}}, "must hold exactly one host"),
    "two controllers": (
        {"slurmctld": {"hosts": {"c1": HOST, "c2": HOST}}, "slurmd": {"hosts": {"n1": HOST}}},
        "it holds 2: c1, c2",
    ),
    "no compute node": ({"slurmctld": {"hosts": {"c1": HOST}}, "slurmd": {"hosts": {}}}, "'slurmd' is empty"),
    "empty inventory": ({}, "must hold exactly one host"),
    "two accounting hosts": (
        {"slurmctld": {"hosts": {"c1": HOST}}, "slurmd": {"hosts": {"n1": HOST}},
         "slurmdbd": {"hosts": {"d1": HOST, "d2": HOST}}},
        "The inventory group 'slurmdbd' holds 2 hosts (d1, d2); a cluster has one accounting database",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_inventory_shape_is_refused_on_localhost(case, tmp_path):
    groups, message = CASES[case]
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": groups}}))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), "site.yml"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in " ".join(output.split()), output
    assert "UNREACHABLE" not in output
    assert "Gathering Facts" not in output
