"""A newcomer's run of the playground, as the README tells it: `scripts/playground.sh up` with two
compute nodes, a job on every compute node as the demo user from the login node, JupyterHub on
localhost, then `scripts/playground.sh down` leaves no container or network behind.

Slow (a whole cluster with JupyterHub from fresh containers, about ten minutes) and not in CI.
Run by hand, one at a time:
    .venv/bin/python -m pytest -v -rA -p no:cacheprovider tests/playground
It replaces a playground that is already up. PLAYGROUND_HUB_PORT picks the hub's local port.
"""

import json
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYGROUND = ["bash", str(ROOT / "scripts" / "playground.sh")]
PREFIX = "playground-"
NETWORK = "hpc-slurm-playground"
LOGIN = "playground-login"
COMPUTES = {"playground-node01", "playground-node02"}
HUB_PORT = int(os.environ.get("PLAYGROUND_HUB_PORT", "8000"))
HUB_WAIT_S = 60


def run(*command):
    return subprocess.run(command, capture_output=True, text=True, check=False)


def leftovers():
    containers = run("docker", "ps", "--all", "--format", "{{.Names}}").stdout.split()
    networks = run("docker", "network", "ls", "--format", "{{.Name}}").stdout.split()
    return [name for name in containers if name.startswith(PREFIX)] + [name for name in networks if name == NETWORK]


@pytest.fixture(scope="module")
def playground():
    started = time.monotonic()
    up = run(*PLAYGROUND, "up", "--nodes", "2", "--hub-port", str(HUB_PORT))
    seconds = time.monotonic() - started
    try:
        assert up.returncode == 0, f"up failed after {seconds:.0f} s:\n{up.stdout[-6000:]}\n{up.stderr[-3000:]}"
        yield {"output": up.stdout, "seconds": seconds}
    finally:
        run(*PLAYGROUND, "down")  # also when a test failed; down is harmless when nothing is up


def test_up_says_how_to_use_it(playground):
    output = playground["output"]
    print(f"up took {playground['seconds']:.0f} s")
    assert f"docker exec -it {LOGIN} su - demo" in output
    assert f"http://127.0.0.1:{HUB_PORT}/" in output
    assert re.search(r"user demo, password \S{8,}", output), output[-2000:]


def test_only_the_hub_port_is_published_and_only_on_loopback(playground):
    published = run("docker", "ps", "--filter", "label=hpc.slurm.playground", "--format", "{{.Names}} {{.Ports}}")
    ports = dict(line.partition(" ")[::2] for line in published.stdout.splitlines())
    assert ports == {LOGIN: f"127.0.0.1:{HUB_PORT}->8000/tcp", **{host: "" for host in COMPUTES}, "playground-ctl": ""}


def test_a_job_runs_on_every_compute_node_as_the_demo_user(playground):
    job = run("docker", "exec", LOGIN, "runuser", "-u", "demo", "--",
              "srun", "-N2", "sh", "-c", 'echo "$(hostname) $(id -un)"')
    assert job.returncode == 0, job.stdout + job.stderr
    ran = {tuple(line.split()) for line in job.stdout.splitlines()}
    assert ran == {(host, "demo") for host in COMPUTES}, job.stdout


def test_the_hub_answers_on_localhost(playground):
    url = f"http://127.0.0.1:{HUB_PORT}/hub/api"
    deadline = time.monotonic() + HUB_WAIT_S
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                answer = json.load(response)
            break
        except (OSError, ValueError) as error:
            if time.monotonic() >= deadline:
                pytest.fail(f"no JupyterHub answered at {url} within {HUB_WAIT_S} s ({error})")
            time.sleep(2)
    assert "version" in answer, answer


def test_down_leaves_nothing_behind(playground):
    down = run(*PLAYGROUND, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert leftovers() == []
    assert not (ROOT / ".cache" / "playground").exists()
