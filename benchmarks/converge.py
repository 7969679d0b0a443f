"""How long does `ansible-playbook site.yml` take to bring up a cluster, against doing it by hand?

Usage (from the repository root, as root, after `bash scripts/test.sh` or at least
scripts/venv.sh, scripts/testbed-docker.sh and scripts/testbed-images.sh 12):

    .venv/bin/pip install -r benchmarks/requirements.txt     # matplotlib for the plot, Mitogen
    .venv/bin/python benchmarks/converge.py [--computes 0,1,4,16] [--rounds 3] [--profile] [--mitogen] [--compare DIR]

For every cluster size (0 computes = one host that is controller and compute node), each round
starts fresh containers of the test image (the ones molecule uses: systemd as PID 1, the .debs
already in the apt cache, nothing installed) and times, side by side:

* hand-run: benchmarks/hand_run.sh, the tutorials' steps as one shell script, each step on all
  nodes at once; the floor;
* plain playbook: benchmarks/hand_run.yml, the same steps as one plain task each, on the same
  inventory and connection as site.yml, no checks: what Ansible itself costs for those steps;
* cold converge: `ansible-playbook site.yml` on an inventory of the same containers, reached
  with the docker connection, from the first task until the health play has run a job on
  every node;
* rerun: site.yml again on the converged cluster; it must report changed=0 everywhere;
* partition change: site.yml once more on the same cluster with another partition
  (-e slurm_partitions=PARTITION_CHANGE, MaxTime 7 days to 2): the wall time, and how many hosts
  the PLAY RECAP reports changed on (localhost aside); configless, that is the controller alone.
  A non-zero return code is printed at once, shown as "failed" in the table and makes the script
  exit non-zero once the results are written;
* one module run: 20 tasks of ansible.builtin.ping on every host of the converged cluster, the
  seconds per task. It is Ansible's floor for one step on every host on this test bed; the rerun
  divided by it says how many such steps the rerun costs;
* with --mitogen, cold converge, rerun and partition change again under Mitogen's strategy
  (mitogen_linear, its own docker connection): an optional accelerator, not a dependency of the
  collection.
* with --accounting, cold converge and rerun again with accounting: the controller is also the
  slurmdbd host (MariaDB and slurmdbd) and one account with a limit is declared, against the
  same cluster without it.
* with --compare DIR, cold converge, rerun and partition change of the site.yml of another
  checkout (a `git worktree` of an older commit), so that a change is measured against what it
  replaces in the same rounds.

Every side runs on its own fresh containers and their order rotates each round, so no side
always goes first on a warm page cache. Figures are medians over the rounds; the machine is
shared, so read the ratios rather than the seconds.
Writes benchmarks/results/converge.md (table), converge.json (every run) and converge.png.
With --profile, the cold converges also print per-task and per-role times
(ansible.posix.profile_tasks/profile_roles) into .cache/bench-logs/.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
LOGS = REPO / ".cache" / "bench-logs"
PREFIX = "bench"
NETWORK = f"{PREFIX}-net"
# The options of the molecule platforms (molecule/cluster/molecule.yml): systemd as PID 1.
DOCKER_RUN = [
    "--cap-add", "SYS_ADMIN", "--cap-add", "SYS_NICE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock",
    "--cgroupns", "host", "-e", "container=docker",
]
# The partition change: the defaults' partition with MaxTime 7 days down to 2.
PARTITION_CHANGE = [{"name": "main", "default": True, "default_time": "01:00:00", "max_time": "2-00:00:00"}]


def run(cmd, **kwargs):
    return subprocess.run(cmd, check=True, text=True, **kwargs)


def hosts_for(computes):
    controller = f"{PREFIX}-ctl"
    nodes = [f"{PREFIX}-node{i:02d}" for i in range(1, computes + 1)] or [controller]
    return controller, nodes


def remove_containers():
    names = subprocess.run(["docker", "ps", "-aq", "--filter", f"name=^{PREFIX}-"],
                           capture_output=True, text=True, check=True).stdout.split()
    if names:
        run(["docker", "rm", "-f", *names], stdout=subprocess.DEVNULL)


def start_containers(image, controller, nodes):
    """Fresh containers, up to a running systemd; not part of any timing."""
    remove_containers()
    if subprocess.run(["docker", "network", "inspect", NETWORK], capture_output=True).returncode:
        run(["docker", "network", "create", NETWORK], stdout=subprocess.DEVNULL)
    hosts = sorted({controller, *nodes})
    for host in hosts:
        run(["docker", "run", "-d", "--name", host, "--hostname", host, "--network", NETWORK,
             *DOCKER_RUN, image, "/lib/systemd/systemd"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    for host in hosts:
        # Straight after `docker run` systemctl cannot reach systemd yet and prints nothing.
        while (state := subprocess.run(["docker", "exec", host, "systemctl", "is-system-running", "--wait"],
                                       capture_output=True, text=True).stdout.strip()) not in ("running", "degraded"):
            if time.monotonic() > deadline:
                sys.exit(f"{host}: systemd is '{state}', not running; see `docker logs {host}`")
            time.sleep(0.5)


def timed_rc(cmd, log, env=None, cwd=REPO):
    """Seconds that cmd takes, and its return code."""
    start = time.monotonic()
    with open(log, "w") as out:
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    return time.monotonic() - start, result.returncode


def timed(cmd, log, env=None, cwd=REPO):
    seconds, returncode = timed_rc(cmd, log, env, cwd)
    if returncode:
        sys.exit(f"{' '.join(cmd[:2])} failed (rc {returncode}); see {log}")
    return seconds


# The --accounting side's declaration: one account holding the health check's job user.
ACCOUNTS = [{"name": "bench", "users": ["nobody"], "limits": {"MaxJobs": 4}}]


def write_inventory(path, controller, nodes, connection="community.docker.docker", accounting=False):
    lines = ["all:", "  vars:", f"    ansible_connection: {connection}"]
    if accounting:
        lines += [f"    slurm_accounting_accounts: {json.dumps(ACCOUNTS)}"]
    lines += ["  children:", "    slurmctld:", "      hosts:", f"        {controller}:", "    slurmd:", "      hosts:"]
    lines += [f"        {node}:" for node in nodes]
    if accounting:
        lines += ["    slurmdbd:", "      hosts:", f"        {controller}:"]
    path.write_text("\n".join(lines) + "\n")


def recap_changed(log):
    """changed= of every host in the last PLAY RECAP."""
    text = Path(log).read_text()
    recap = text[text.rindex("PLAY RECAP"):]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", recap, re.M)}


def hand_run(image, controller, nodes, tag):
    start_containers(image, controller, nodes)
    computes = [] if nodes == [controller] else nodes
    return timed(["bash", str(REPO / "benchmarks" / "hand_run.sh"), controller, *computes],
                 LOGS / f"{tag}-hand-run.log")


def mitogen_strategy_path():
    """The strategy plugins of Mitogen, or None when it is not installed."""
    try:
        import ansible_mitogen
    except ImportError:
        return None
    return str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy")


def playbook_command(image, controller, nodes, playbook, mitogen=False, checkout=REPO, accounting=False):
    """Fresh containers, and the command and environment that run `playbook` on them."""
    start_containers(image, controller, nodes)
    inventory = Path(tempfile.mkdtemp(prefix="bench-inventory-")) / "hosts.yml"
    # Mitogen takes over connections it knows by their short name only.
    write_inventory(inventory, controller, nodes, "docker" if mitogen else "community.docker.docker", accounting)
    env = dict(os.environ, ANSIBLE_CONFIG=str(checkout / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if mitogen:
        env.update(ANSIBLE_STRATEGY_PLUGINS=mitogen_strategy_path(), ANSIBLE_STRATEGY="mitogen_linear")
    return [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook)], env


PING_TASKS = 20


def ping_playbook(directory):
    """A playbook of PING_TASKS ping tasks on every host: one module run each, nothing else."""
    path = directory / "ping.yml"
    tasks = "".join(f"    - name: Ping {n}\n      ansible.builtin.ping:\n" for n in range(1, PING_TASKS + 1))
    path.write_text(f"- name: One module run per task\n  hosts: all\n  gather_facts: false\n  tasks:\n{tasks}")
    return path


def plain_run(image, controller, nodes, tag):
    command, env = playbook_command(image, controller, nodes, REPO / "benchmarks" / "hand_run.yml")
    return timed(command, LOGS / f"{tag}-plain.log", env)


def ansible_run(image, controller, nodes, tag, profile, mitogen=False, checkout=REPO, accounting=False):
    """Cold converge, rerun and partition change of a checkout's site.yml, on the same fresh containers."""
    playbook, env = playbook_command(image, controller, nodes, checkout / "site.yml", mitogen, checkout, accounting)
    cold_env = dict(env)
    if profile:
        cold_env.update(ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks,ansible.posix.profile_roles",
                        PROFILE_TASKS_TASK_OUTPUT_LIMIT="40")
    cold = timed(playbook, LOGS / f"{tag}-cold.log", cold_env, checkout)
    rerun = timed(playbook, LOGS / f"{tag}-rerun.log", env, checkout)
    changed = recap_changed(LOGS / f"{tag}-rerun.log")
    partition_log = LOGS / f"{tag}-partition.log"
    partition, partition_rc = timed_rc(playbook + ["-e", json.dumps({"slurm_partitions": PARTITION_CHANGE})],
                                       partition_log, env, checkout)
    module_run = timed(playbook[:-1] + [str(ping_playbook(Path(playbook[-2]).parent))],
                       LOGS / f"{tag}-ping.log", env, checkout) / PING_TASKS
    written = None
    if partition_rc:
        print(f"PARTITION CHANGE FAILED: {checkout}/site.yml (rc {partition_rc}); see {partition_log}",
              file=sys.stderr, flush=True)
    else:
        written = sum(1 for host, n in recap_changed(partition_log).items() if host != "localhost" and n > 0)
    return {"cold": cold, "rerun": rerun, "rerun_changed": sum(changed.values()), "module_run": module_run,
            "partition": partition, "partition_rc": partition_rc, "partition_written": written}


def label(computes):
    return "1 host (controller + compute)" if computes == 0 else f"1 controller + {computes} computes"


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def partition_cells(runs, prefix=""):
    """The partition change's median seconds and hosts written, or its failure."""
    failed = [r[prefix + "partition_rc"] for r in runs if r[prefix + "partition_rc"]]
    if failed:
        return f"failed (rc {failed[0]})", "–"
    return f"{median(runs, prefix + 'partition'):.1f} s", f"{median(runs, prefix + 'partition_written'):g}"


def write_table(results, rounds, when, mitogen, compare=None, accounting=False):
    lines = [
        f"Medians of {rounds} rounds on fresh Debian 12 containers ({when}, {os.cpu_count()} cores).",
        "Ratios are to the hand-run floor (benchmarks/hand_run.sh) measured in the same rounds; "
        "the plain playbook (benchmarks/hand_run.yml) is the same steps as plain Ansible tasks, and "
        "site.yml's cold converge is also given as a ratio to it; "
        "rerun % is of the cold converge of the same side; "
        "partition change is site.yml again on the converged cluster with slurm_partitions changed, "
        "hosts written how many hosts it reported changed on; one module run is a ping task on every host of "
        "the converged cluster, Ansible's floor for one step here, and the rerun is also given in those steps.", "",
        "| cluster | hand-run | plain playbook | ratio | cold converge | ratio | to plain | idempotent rerun "
        "| rerun/cold | rerun changed | one module run | rerun in module runs | partition change | hosts written |"
        + (" cold, Mitogen | ratio | rerun, Mitogen | rerun/cold |" if mitogen else ""),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|---:|---:|" if mitogen else ""),
    ]
    for computes, runs in results.items():
        hand, plain = median(runs, "hand_run"), median(runs, "plain")
        cold, rerun = median(runs, "cold"), median(runs, "rerun")
        changed = max(max(r["rerun_changed"], r.get("mitogen_rerun_changed", 0), r.get("compare_rerun_changed", 0))
                      for r in runs)
        line = (f"| {label(computes)} | {hand:.1f} s | {plain:.1f} s | {plain / hand:.2f}× | {cold:.1f} s | "
                f"{cold / hand:.2f}× | {cold / plain:.2f}× | {rerun:.1f} s | {100 * rerun / cold:.0f}% | {changed} | "
                f"{median(runs, 'module_run'):.2f} s | {rerun / median(runs, 'module_run'):.0f} | "
                f"{' | '.join(partition_cells(runs))} |")
        if mitogen:
            m_cold, m_rerun = median(runs, "mitogen_cold"), median(runs, "mitogen_rerun")
            line += f" {m_cold:.1f} s | {m_cold / hand:.2f}× | {m_rerun:.1f} s | {100 * m_rerun / m_cold:.0f}% |"
        lines.append(line)
    if compare:
        lines += [
            "", f"Against {compare} (the same rounds, its own fresh containers; speed-up = {compare} / this checkout):", "",
            f"| cluster | cold, {compare} | cold, this | speed-up | rerun, {compare} | rerun, this | speed-up "
            f"| partition change, {compare} | partition change, this "
            f"| hosts written, {compare} | hosts written, this |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for computes, runs in results.items():
            cold, rerun = median(runs, "cold"), median(runs, "rerun")
            old_cold, old_rerun = median(runs, "compare_cold"), median(runs, "compare_rerun")
            old_partition, old_written = partition_cells(runs, "compare_")
            partition, written = partition_cells(runs)
            lines.append(f"| {label(computes)} | {old_cold:.1f} s | {cold:.1f} s | {old_cold / cold:.2f}× | "
                         f"{old_rerun:.1f} s | {rerun:.1f} s | {old_rerun / rerun:.2f}× | "
                         f"{old_partition} | {partition} | {old_written} | {written} |")
    if accounting:
        lines += [
            "", "With accounting (the same rounds, its own fresh containers): the controller is also the slurmdbd "
            "host (MariaDB, slurmdbd) and one account with a limit is declared.", "",
            "| cluster | cold, without | cold, with accounting | ratio | rerun, without | rerun, with accounting "
            "| ratio | rerun changed, with |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for computes, runs in results.items():
            cold, rerun = median(runs, "cold"), median(runs, "rerun")
            a_cold, a_rerun = median(runs, "accounting_cold"), median(runs, "accounting_rerun")
            a_changed = max(r["accounting_rerun_changed"] for r in runs)
            lines.append(f"| {label(computes)} | {cold:.1f} s | {a_cold:.1f} s | {a_cold / cold:.2f}× | "
                         f"{rerun:.1f} s | {a_rerun:.1f} s | {a_rerun / rerun:.2f}× | {a_changed} |")
    return "\n".join(lines) + "\n"


def plot(results, path, mitogen, compare=None):
    try:
        import matplotlib
    except ImportError:
        print("no matplotlib: no plot (pip install -r benchmarks/requirements.txt)", file=sys.stderr)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    hosts = [1 if c == 0 else c + 1 for c in results]
    series = [("hand_run", "hand-run script", "o--"), ("plain", "the same steps as a plain playbook", "o:"),
              ("cold", "site.yml, cold", "s-"),
              ("rerun", "site.yml, rerun (changed=0)", "^-")]
    if mitogen:
        series += [("mitogen_cold", "site.yml + Mitogen, cold", "s:"),
                   ("mitogen_rerun", "site.yml + Mitogen, rerun", "^:")]
    if compare:
        series += [("compare_cold", f"site.yml at {compare}, cold", "s--"),
                   ("compare_rerun", f"site.yml at {compare}, rerun", "^--")]
    fig, axis = plt.subplots(figsize=(7, 4.2), dpi=110)
    for key, name, style in series:
        axis.plot(hosts, [median(runs, key) for runs in results.values()], style, label=name)
    axis.set_xlabel("hosts in the cluster (1 = controller is also the compute node)")
    axis.set_ylabel("wall time, median (s)")
    axis.set_xticks(hosts)
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title("Deploy time against cluster size, Debian 12 containers")
    fig.tight_layout()
    fig.savefig(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--computes", default="0,1,4,16",
                        help="cluster sizes as numbers of compute nodes; 0 = a single host (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--release", default="12", help="Debian release of the test image")
    parser.add_argument("--profile", action="store_true", help="per-task profile of every cold converge")
    parser.add_argument("--mitogen", action="store_true",
                        help="also time site.yml under Mitogen's strategy (pip install -r benchmarks/requirements.txt)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--checkout", type=Path, default=REPO,
                        help="time the site.yml of another checkout of this repository (e.g. a `git worktree` "
                             "of an older commit) against the same hand-run floor")
    parser.add_argument("--accounting", action="store_true",
                        help="also time site.yml with accounting (slurmdbd and MariaDB on the controller, one account)")
    parser.add_argument("--compare", type=Path,
                        help="also time the site.yml of this other checkout (e.g. a `git worktree` of an older "
                             "commit) in the same rounds, and tabulate the speed-up")
    args = parser.parse_args()
    image = f"hpc-slurm-test:debian{args.release}"
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode:
        sys.exit(f"no image {image}: run scripts/testbed-images.sh {args.release} first")
    if args.mitogen and not mitogen_strategy_path():
        sys.exit("--mitogen: Mitogen is not installed (pip install -r benchmarks/requirements.txt)")
    compare = None
    if args.compare:
        revision = subprocess.run(["git", "-C", str(args.compare), "rev-parse", "--short", "HEAD"],
                                  capture_output=True, text=True)
        compare = f"commit {revision.stdout.strip()}" if revision.returncode == 0 else str(args.compare)
    LOGS.mkdir(parents=True, exist_ok=True)
    args.output.mkdir(parents=True, exist_ok=True)
    sizes = [int(n) for n in args.computes.split(",")]
    results = {n: [] for n in sizes}
    try:
        for round_number in range(1, args.rounds + 1):
            for computes in sizes:
                controller, nodes = hosts_for(computes)
                tag = f"c{computes}-r{round_number}"
                entry = {}
                sides = (["hand", "plain", "ansible"] + (["mitogen"] if args.mitogen else [])
                         + (["compare"] if args.compare else []) + (["accounting"] if args.accounting else []))
                # Rotate the order each round so that no side always goes first.
                shift = (round_number - 1) % len(sides)
                for side in sides[shift:] + sides[:shift]:
                    if side == "hand":
                        entry["hand_run"] = hand_run(image, controller, nodes, tag)
                    elif side == "plain":
                        entry["plain"] = plain_run(image, controller, nodes, tag)
                    elif side == "ansible":
                        entry.update(ansible_run(image, controller, nodes, tag, args.profile,
                                                 checkout=args.checkout.resolve()))
                    elif side == "accounting":
                        figures = ansible_run(image, controller, nodes, f"{tag}-accounting", False,
                                              checkout=args.checkout.resolve(), accounting=True)
                        entry.update({f"accounting_{key}": value for key, value in figures.items()})
                    elif side == "compare":
                        figures = ansible_run(image, controller, nodes, f"{tag}-compare", False,
                                              checkout=args.compare.resolve())
                        entry.update({f"compare_{key}": value for key, value in figures.items()})
                    else:
                        figures = ansible_run(image, controller, nodes, f"{tag}-mitogen", False, mitogen=True,
                                              checkout=args.checkout.resolve())
                        entry.update({f"mitogen_{key}": value for key, value in figures.items()})
                results[computes].append(entry)
                print(f"round {round_number}, {label(computes)}: "
                      + ", ".join(f"{key} {value:.1f}" if isinstance(value, float) else f"{key} {value}"
                                  for key, value in entry.items()), flush=True)
    finally:
        remove_containers()
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    table = write_table(results, args.rounds, when, args.mitogen, compare, args.accounting)
    (args.output / "converge.md").write_text(table)
    (args.output / "converge.json").write_text(json.dumps(
        {"date": when, "release": args.release, "rounds": args.rounds, "cpus": os.cpu_count(), "compare": compare,
         "runs": {str(k): v for k, v in results.items()}}, indent=1) + "\n")
    plot(results, args.output / "converge.png", args.mitogen, compare)
    print(table)
    failed = []
    for computes, runs in results.items():
        for number, entry in enumerate(runs, 1):
            for key in ("partition_rc", "compare_partition_rc", "mitogen_partition_rc"):
                if entry.get(key):
                    failed.append(f"{label(computes)}, round {number}: {key} {entry[key]}")
    if failed:
        sys.exit("partition change failed (see the *-partition.log in .cache/bench-logs):\n" + "\n".join(failed))


if __name__ == "__main__":
    main()
