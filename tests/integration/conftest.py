"""Fixtures for the tests that molecule's testinfra verifier runs against a converged cluster.

Hosts are reached with testinfra's docker backend (one `docker exec` per command), which is
far faster than the ansible backend; playbooks run with the repository's ansible-playbook
against molecule's own inventory.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_BIN = Path(sys.executable).parent
# The normal user that test jobs run as (the tests that name it at collection time repeat it).
JOB_USER = "hpcuser"
JOB_UID = 5001


def pytest_configure(config):
    config.addinivalue_line("markers", "multinode: needs a controller and two or more compute nodes")
    config.addinivalue_line("markers", "reruns: runs site.yml again with other settings (single-node scenario only)")
    config.addinivalue_line("markers", "apptainer: needs the apptainer scenario (role enabled)")
    config.addinivalue_line("markers", "faults: breaks and changes a live multi-node cluster (faults scenario only)")
    config.addinivalue_line("markers", "accounting: needs slurmdbd and declared accounts (accounting scenario only)")
    config.addinivalue_line("markers", "login: needs a login node and declared users (login scenario only)")


@pytest.fixture(scope="session")
def inventory_file():
    path = os.environ.get("MOLECULE_INVENTORY_FILE")
    if not path:
        pytest.fail("MOLECULE_INVENTORY_FILE is not set: run these tests through `molecule verify`")
    return path


@pytest.fixture(scope="session")
def cluster(inventory_file):
    """Group membership as Ansible sees it: {'slurmctld': [...], 'slurmd': [...], 'all': [...]}."""
    listing = json.loads(
        subprocess.run(
            [str(ANSIBLE_BIN / "ansible-inventory"), "-i", inventory_file, "--list"],
            check=True, capture_output=True, text=True, cwd=REPO,
        ).stdout
    )

    def members(group):
        hosts = list(listing.get(group, {}).get("hosts", []))
        for child in listing.get(group, {}).get("children", []):
            hosts += [h for h in members(child) if h not in hosts]
        return hosts

    groups = {name: members(name) for name in ("slurmctld", "slurmd", "slurmdbd", "slurm_login", "all")}
    assert len(groups["slurmctld"]) == 1, groups
    groups["hostvars"] = listing.get("_meta", {}).get("hostvars", {})
    return groups


@pytest.fixture(scope="session")
def hostvars(cluster):
    """Inventory variables of one host (what the roles saw), by inventory name."""
    return lambda name: cluster["hostvars"].get(name, {})


def docker_host(name):
    return testinfra.get_host(f"docker://{name}")


@pytest.fixture(scope="session")
def controller(cluster):
    return docker_host(cluster["slurmctld"][0])


@pytest.fixture(scope="session")
def computes(cluster):
    return [docker_host(name) for name in cluster["slurmd"]]


@pytest.fixture(scope="session")
def all_hosts(cluster):
    return [docker_host(name) for name in cluster["all"]]


@pytest.fixture(scope="session")
def run_playbook(inventory_file):
    """Run a playbook of this repository against the molecule cluster (or another inventory file);
    returns CompletedProcess."""

    def run(playbook, *args, extra_vars=None, env=None, inventory=None):
        cmd = [str(ANSIBLE_BIN / "ansible-playbook"), "-i", str(inventory or inventory_file), str(REPO / playbook), *args]
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        full_env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                    "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1", **(env or {})}
        return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=full_env)

    return run


@pytest.fixture(scope="module")
def job_user(all_hosts):
    """A normal user with the same uid on every host, as a directory service would give."""
    for host in all_hosts:
        host.run_expect([0], f"id {JOB_USER} || useradd --create-home --uid {JOB_UID} {JOB_USER}")
    return JOB_USER
