"""How much slower is hpc.slurm.slurm_mw_job than a hand-written `sbatch --wait` job?

Usage (from the repository root, with the controller-side virtualenv):

    .venv/bin/python benchmarks/mw_job_overhead.py -i INVENTORY [--rounds 7] [--ntasks 16]

On the cluster of INVENTORY (groups slurmctld and slurmd), one ansible-playbook run alternates,
round after round, two tasks on the controller that do the same work:

* module: hpc.slurm.slurm_mw_job's self-test in batch mode: 1 master + NTASKS-1 workers over all
  compute nodes, every worker checking in with the master over TCP;
* raw: `sbatch --wait` of a script written the way users write it by hand (see HAND_WRITTEN_JOB):
  one srun step finds the master's address, a random port, then srun of a Python driver whose
  rank 0 accepts a connection from every other rank. The only change to the usual recipe is
  that workers retry their connection instead of sleeping a fixed second.

Both get the same allocation options (--nodes, --ntasks and EXTRA_OPTIONS, by default
--overcommit so that 16 tasks fit on small test nodes: Slurm then gives each node one CPU and
all tasks share it, on both sides alike). The order alternates each round so that neither side
always meets a freshly freed node.

Two ratios are printed, from medians:
* task: wall time of each Ansible task (json callback timestamps): what a playbook waits;
* inner: the module's own `elapsed` (validation, submission, waiting) against the command
  module's `delta` for `sbatch --wait` (submission and waiting).
`sbatch --wait` polls the job after 2 s, then at growing intervals; the module polls every
poll_interval and wakes up as soon as the job reports its result. Short jobs therefore favour
the module; the printed job run times show how long the jobs themselves took.
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANSIBLE_BIN = Path(sys.executable).parent

# Per-task driver of the hand-written job: rank 0 listens, every other rank connects (with
# retries, no fixed sleep) and sends its rank; rank 0 checks that all of them came.
HAND_WRITTEN_DRIVER = r'''
import os, socket, sys, time
ip, port = sys.argv[1], int(sys.argv[2])
rank, size = int(os.environ["SLURM_PROCID"]), int(os.environ["SLURM_NTASKS"])
if rank == 0:
    server = socket.create_server((ip, port))
    seen = set()
    server.settimeout(60)
    while len(seen) < size - 1:
        connection = server.accept()[0]
        seen.add(int(connection.makefile().readline()))
        connection.close()
    print("all %d workers checked in" % len(seen))
else:
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection((ip, port), timeout=5) as connection:
                connection.sendall(b"%d\n" % rank)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
'''

HAND_WRITTEN_JOB = """#!/bin/bash
# The usual recipe: find task 0's address with a one-task step, pick a random port, srun the driver.
master_ip=$(srun --ntasks=1 --nodes=1 hostname -I | cut -d' ' -f1)
master_port=$((RANDOM + 10000))
srun python3 -c {driver} "$master_ip" "$master_port"
""".format(driver=shlex.quote(HAND_WRITTEN_DRIVER))

SIDE_TASKS = {
    "module": """
- name: Module self-test
  hpc.slurm.slurm_mw_job:
    ntasks: "{{ mw_bench_ntasks }}"
    nodes: "{{ mw_bench_nodes }}"
    chdir: /tmp
    job_name: mw-bench-module
    slurm_options: "{{ mw_bench_options }}"
    wait_timeout: 600
""",
    "raw": """
- name: Raw sbatch --wait
  ansible.builtin.command:
    argv: "{{ mw_bench_raw_argv }}"
  changed_when: true
""",
    "raw_poll": """
- name: Raw sbatch, polled every 0.1 s
  ansible.builtin.shell: |
    set -e
    job=$(sbatch {{ mw_bench_raw_options | map('quote') | join(' ') }})
    until scontrol --oneliner show job "$job" | grep -Eq 'JobState=(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL) '; do
      sleep 0.1
    done
  changed_when: true
""",
}
SIDES = ("module", "raw", "raw_poll")

PLAYBOOK = """---
- name: Benchmark slurm_mw_job against sbatch --wait
  hosts: "{{ groups['slurmctld'] | first }}"
  gather_facts: false
  tasks:
    - name: Put the hand-written job script on the controller
      ansible.builtin.copy:
        content: "{{ mw_bench_script }}"
        dest: /tmp/mw_bench_hand_written.sh
        mode: "0755"

    - name: Warm up (first jobs pay for cold caches on the nodes)
      ansible.builtin.include_tasks: round-0.yml
      vars:
        mw_bench_round: 0

    - name: Rounds, each side going first in turn
      ansible.builtin.include_tasks: "round-{{ mw_bench_round % 3 }}.yml"
      loop: "{{ range(1, mw_bench_rounds + 1) | list }}"
      loop_control:
        loop_var: mw_bench_round
"""


def timestamp(value):
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def task_seconds(task):
    duration = task["duration"]
    return (timestamp(duration["end"]) - timestamp(duration["start"])).total_seconds()


def command_delta(host_result):
    hours, minutes, seconds = host_result["delta"].split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def compute_nodes(inventory):
    listing = json.loads(subprocess.run([str(ANSIBLE_BIN / "ansible-inventory"), "-i", inventory, "--list"],
                                        check=True, capture_output=True, text=True, cwd=REPO).stdout)
    return len(listing.get("slurmd", {}).get("hosts", []))


def run_benchmark(args):
    nodes = args.nodes or compute_nodes(args.inventory)
    raw_options = ["--parsable", "--chdir=/tmp", "--output=/tmp/mw-bench-raw-%j.out", "--job-name=mw-bench-raw",
                   "--ntasks=%d" % args.ntasks, "--nodes=%d" % nodes, *args.extra_option,
                   "/tmp/mw_bench_hand_written.sh"]
    raw_argv = ["sbatch", "--wait"] + raw_options
    extra_vars = {"mw_bench_raw_options": raw_options, "mw_bench_rounds": args.rounds, "mw_bench_ntasks": args.ntasks, "mw_bench_nodes": str(nodes),
                  "mw_bench_options": args.extra_option, "mw_bench_raw_argv": raw_argv,
                  "mw_bench_script": HAND_WRITTEN_JOB}
    with tempfile.TemporaryDirectory(prefix="mw-bench-") as workdir:
        Path(workdir, "bench.yml").write_text(PLAYBOOK)
        for shift in range(len(SIDES)):
            order = SIDES[shift:] + SIDES[:shift]
            Path(workdir, "round-%d.yml" % shift).write_text("---" + "".join(SIDE_TASKS[side] for side in order))
        Path(workdir, "vars.json").write_text(json.dumps(extra_vars))
        environ = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
                       ANSIBLE_COLLECTIONS_PATH=str(REPO / "collections"), ANSIBLE_PIPELINING="1")
        ran = subprocess.run([str(ANSIBLE_BIN / "ansible-playbook"), "-i", args.inventory, "bench.yml",
                              "-e", "@" + str(Path(workdir, "vars.json"))],
                             cwd=workdir, env=environ, capture_output=True, text=True, check=False)
    if ran.returncode != 0:
        sys.exit("the benchmark playbook failed:\n" + ran.stdout[-5000:] + ran.stderr[-3000:])
    return parse(json.loads(ran.stdout)), nodes


def parse(report):
    """One dict per round: each side's task wall time, and its inner time where it has one."""
    rounds, current = [], {}
    for play in report["plays"]:
        for task in play["tasks"]:
            side = ROUND_NAMES.get(task["task"]["name"])
            if side is None:
                continue
            for result in task["hosts"].values():
                current[side + "_task"] = task_seconds(task["task"])
                if side == "module":
                    current["module_inner"] = result["elapsed"]
                else:
                    current[side + "_inner"] = command_delta(result)
            if all(side + "_task" in current for side in SIDES):
                rounds.append(current)
                current = {}
    return rounds[1:]  # the warm-up round is not counted


ROUND_NAMES = {
    "Module self-test": "module",
    "Raw sbatch --wait": "raw",
    "Raw sbatch, polled every 0.1 s": "raw_poll",
}


def report(rounds, args, nodes):
    def median(key):
        return statistics.median(entry[key] for entry in rounds)

    columns = [(side + "_" + kind) for kind in ("task", "inner") for side in SIDES]
    print("slurm_mw_job vs a hand-written job: 1 master + %d workers on %d nodes, options %s, %d rounds"
          % (args.ntasks - 1, nodes, " ".join(args.extra_option) or "(none)", len(rounds)))
    print("seconds; task = Ansible task wall time, inner = module elapsed / command delta")
    print("%-7s" % "round" + "".join("%15s" % column for column in columns))
    for number, entry in enumerate(rounds, 1):
        print("%-7d" % number + "".join("%15.2f" % entry[column] for column in columns))
    print("%-7s" % "median" + "".join("%15.2f" % median(column) for column in columns))
    ratios = {}
    for baseline in ("raw", "raw_poll"):
        for kind in ("task", "inner"):
            ratios["%s_%s" % (baseline, kind)] = median("module_" + kind) / median(baseline + "_" + kind)
    print("module / sbatch --wait:        task %.2f, inner %.2f" % (ratios["raw_task"], ratios["raw_inner"]))
    print("module / sbatch polled 0.1 s:  task %.2f, inner %.2f" % (ratios["raw_poll_task"], ratios["raw_poll_inner"]))
    return {"rounds": rounds, "ratios": ratios, "nodes": nodes, "ntasks": args.ntasks, "options": args.extra_option}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("-i", "--inventory", required=True, help="inventory with groups slurmctld and slurmd")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ntasks", type=int, default=16, help="tasks in each job: 1 master + the workers")
    parser.add_argument("--nodes", type=int, default=0, help="nodes to span (default: every slurmd host)")
    parser.add_argument("--extra-option", action="append", default=None,
                        help="Slurm option for both jobs (repeatable; default --overcommit)")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    if args.extra_option is None:
        args.extra_option = ["--overcommit"]
    rounds, nodes = run_benchmark(args)
    summary = report(rounds, args, nodes)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
