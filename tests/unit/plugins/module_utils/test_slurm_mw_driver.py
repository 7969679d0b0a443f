"""The launcher's output reading (on recorded real srun output) and the task driver, run for
real as separate processes talking over this machine's loopback interface."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ansible_collections.hpc.slurm.plugins.module_utils import slurm_mw_driver
from ansible_collections.hpc.slurm.plugins.module_utils.slurm_mw_driver import (
    BOOTSTRAP,
    MARKER,
    StepCollector,
    command_argv,
    exit_status,
    expand_hostlist,
    expand_placeholders,
    is_listening_on,
    listening_sockets,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SOURCE = Path(slurm_mw_driver.__file__).read_text()


# --------------------------------------------------------------------------- helpers

def recorded_hostlists(version):
    """(expression, Slurm's expansion) pairs from the recorded `scontrol show hostnames` runs.

    Malformed expressions are left out: Slurm releases disagree on them (24.11 turns 'a[[1]]'
    into 'a[1]', 22.05 refuses it), and node lists from Slurm are always well formed.
    """
    malformed = set()
    for any_version in ("debian12", "debian13"):
        malformed.update(expression for expression, hosts in _hostlist_runs(any_version)
                         if any("Invalid" in host for host in hosts))
    return [(expression, hosts) for expression, hosts in _hostlist_runs(version) if expression not in malformed]


def _hostlist_runs(version):
    cases, expression, hosts = [], None, []
    for line in (FIXTURES / f"scontrol-hostnames.{version}.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("== "):
            if expression is not None:
                cases.append((expression, hosts))
            expression, hosts = line[3:], []
        else:
            hosts.append(line)
    cases.append((expression, hosts))
    return cases


@pytest.mark.parametrize("version", ["debian12", "debian13"])
def test_hostlists_expand_as_slurm_expands_them(version):
    cases = recorded_hostlists(version)
    assert len(cases) > 10
    for expression, hosts in cases:
        assert expand_hostlist(expression) == hosts, expression


def test_placeholders_replace_only_the_mw_names():
    values = {"MW_MASTER_IP": "10.0.0.1", "MW_MASTER_PORT": "4000", "MW_PROC_ID": "3"}
    assert expand_placeholders("$MW_MASTER_IP:${MW_MASTER_PORT}", values) == "10.0.0.1:4000"
    assert expand_placeholders("rank-${MW_PROC_ID}.log $HOME $MW_UNKNOWN", values) == "rank-3.log $HOME $MW_UNKNOWN"
    assert command_argv({"argv": ["prog", "--rank=$MW_PROC_ID"]}, values) == ["prog", "--rank=3"]
    # A shell string is left to the shell, which has the same names as environment variables.
    assert command_argv({"shell": "echo $MW_PROC_ID"}, values) == ["/bin/sh", "-c", "echo $MW_PROC_ID"]


def test_exit_status_counts_a_signal_as_128_plus_its_number():
    assert exit_status(0) == (0, None)
    assert exit_status(5) == (5, None)
    assert exit_status(-9) == (137, "SIGKILL")


def test_listening_sockets_are_read_from_the_kernel_table():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        sockets = listening_sockets()
        assert ("127.0.0.1", port) in sockets
        assert is_listening_on("127.0.0.1", port, sockets)
        assert not is_listening_on("10.9.9.9", port, sockets)
    assert not is_listening_on("127.0.0.1", port, listening_sockets())


def test_a_wildcard_listener_counts_for_any_address():
    with socket.create_server(("0.0.0.0", 0)) as server:
        port = server.getsockname()[1]
        assert is_listening_on("192.0.2.7", port, listening_sockets())


# --------------------------------------------------------------------------- recorded srun output

def collect(transcripts, run_name, ntasks=4, self_test=True):
    """Feed a recorded launcher run's srun output to a StepCollector, as the launcher did."""
    run = transcripts[run_name]
    collector = StepCollector(ntasks, 20, self_test=self_test)
    recorded_result = None
    for stream in ("stdout", "stderr"):
        for line in run[stream].splitlines():
            if line.startswith(MARKER):
                event = json.loads(line[len(MARKER):])
                if event["event"] == "result":
                    recorded_result = event
                continue
            if line.startswith("salloc: "):
                continue
            collector.feed(stream, line)
    return collector.result(recorded_result["srun_rc"]), recorded_result


def test_self_test_output(transcripts):
    result, recorded = collect(transcripts, "step self-test")
    assert result["ok"] and result["failed_ranks"] == [] and result["workers_missing"] == []
    assert [worker["rank"] for worker in result["workers_connected"]] == [1, 2, 3]
    assert result["job_id"] == recorded["job_id"]
    assert result["master"]["host"] == result["tasks"][0]["host"]
    assert len({task["host"] for task in result["tasks"]}) == 2
    assert all(task["exit_code"] == 0 for task in result["tasks"])
    assert result["stdout"] == [] and result["stderr"] == []


def test_failing_ranks_keep_their_own_output(transcripts):
    result = collect(transcripts, "step exit codes", self_test=False)[0]
    assert not result["ok"] and result["failed_ranks"] == [0, 2]
    master, worker = result["tasks"][0], result["tasks"][2]
    assert (master["exit_code"], worker["exit_code"]) == (3, 5)
    assert master["stdout_tail"] == ["master-out"] and master["stderr_tail"] == ["master-went-wrong"]
    assert worker["stdout_tail"] == ["worker 2"]
    assert "workers_connected" not in result
    assert any("task 2: Exited with exit code 5" in line for line in result["stderr"])


def test_unreachable_master_names_the_missing_ranks(transcripts):
    result = collect(transcripts, "step unreachable master")[0]
    assert result["master"]["ip"] == "127.0.0.1"
    assert result["workers_missing"] == [2, 3] and result["failed_ranks"] == [0, 2, 3]
    assert "Connection refused" in result["tasks"][2]["error"]
    assert "never checked in" in result["tasks"][0]["error"]


def test_a_killed_driver_is_known_from_srun_alone(transcripts):
    result = collect(transcripts, "step driver killed", self_test=False)[0]
    assert result["failed_ranks"] == [3]
    killed = result["tasks"][3]
    assert (killed["exit_code"], killed["signal"]) == (None, "Killed")
    assert killed["host"].endswith("n2") and killed["error"] == "srun: Killed"


def test_srun_task_ranges_and_unlabelled_lines():
    collector = StepCollector(4, 5, self_test=False)
    collector.feed("stderr", "srun: error: node7: tasks 1-3: Exited with exit code 2")
    collector.feed("stderr", "srun: job 88 queued and waiting for resources")
    collector.feed("stdout", "0: partial output" + MARKER + json.dumps({"event": "status", "exit_code": 0, "host": "n1"}))
    result = collector.result(2)
    assert result["job_id"] == "88"
    assert [task["exit_code"] for task in result["tasks"]] == [0, 2, 2, 2]
    assert result["tasks"][0]["stdout_tail"] == ["partial output"]
    assert result["tasks"][2]["host"] == "node7"


# --------------------------------------------------------------------------- the driver, for real

CHECK_IN_TOKEN = "unit-test-check-in-token"


def task_config(**overrides):
    config = {"master_command": None, "worker_command": None, "master_listens": True, "master_port": 0,
              "interface": "lo", "connect_timeout": 10, "env_names": []}
    config.update(overrides)
    return config


def secrets_line(env=None, token=CHECK_IN_TOKEN):
    """What the launcher writes first to every task's standard input."""
    return json.dumps({"env": env or {}, "check_in_token": token}) + "\n"


def start_task(rank, ntasks, config, secrets=None, keep_stdin=True):
    environ = dict(os.environ, SLURM_PROCID=str(rank), SLURM_NTASKS=str(ntasks), SLURMD_NODENAME="unit-node",
                   SLURM_JOB_ID="4242")
    process = subprocess.Popen([sys.executable, "-c", BOOTSTRAP, SOURCE, "task", json.dumps(config)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ,
                               text=True)
    process.stdin.write(secrets_line() if secrets is None else secrets)
    process.stdin.flush()
    if not keep_stdin:
        process.stdin.close()
    return process


def finish(process):
    """Wait for a task and return (stdout, stderr); stdin may already be closed."""
    stdout, stderr = process.stdout.read(), process.stderr.read()
    process.wait(timeout=30)
    return stdout, stderr


def events(stdout):
    return [json.loads(line[len(MARKER):]) for line in stdout.splitlines() if line.startswith(MARKER)]


def read_ready(master, seen):
    """What the launcher does: read rank 0's output until it announces the master."""
    for line in master.stdout:
        seen.append(line)
        if line.startswith(MARKER):
            event = json.loads(line[len(MARKER):])
            if event["event"] == "ready":
                return event
            if event["event"] == "status":
                raise AssertionError("the master ended before it was ready: %s" % event)
    raise AssertionError("the master printed no ready line; stderr: %s" % master.stderr.read())


def run_job(config, ntasks, with_ready=False, env=None):
    """Start the workers first, so they must wait for the address, then the master."""
    workers = [start_task(rank, ntasks, config, secrets_line(env)) for rank in range(1, ntasks)]
    master = start_task(0, ntasks, config, secrets_line(env), keep_stdin=False)
    seen = []
    ready = read_ready(master, seen)
    for worker in workers:
        worker.stdin.write(json.dumps({"ip": ready["ip"], "port": ready["port"], "host": ready["host"]}) + "\n")
        worker.stdin.close()
    outputs = [finish(process) for process in [master] + workers]
    outputs[0] = ("".join(seen) + outputs[0][0], outputs[0][1])
    codes = [process.returncode for process in [master] + workers]
    return (ready, codes, outputs) if with_ready else (codes, outputs)


def status_of(output):
    return [event for event in events(output[0]) if event["event"] == "status"][-1]


def test_self_test_over_loopback_checks_in_every_worker():
    ready, codes, outputs = run_job(task_config(), ntasks=4, with_ready=True)
    assert ready["ip"] == "127.0.0.1" and codes == [0, 0, 0, 0]
    master_status = status_of(outputs[0])
    assert [worker["rank"] for worker in master_status["workers_connected"]] == [1, 2, 3]
    assert master_status["workers_missing"] == []


def test_users_master_and_workers_get_the_address_and_their_ranks():
    master_code = ("import os, socket\n"
                   "server = socket.create_server((os.environ['MW_MASTER_IP'], int(os.environ['MW_MASTER_PORT'])))\n"
                   "total = 0\n"
                   "for worker in range(int(os.environ['MW_NUM_PROC']) - 1):\n"
                   "    connection = server.accept()[0]\n"
                   "    total += int(connection.makefile().readline())\n"
                   "print('sum=%d' % total, flush=True)\n")
    # One connection attempt, no retry: the driver released the worker once the port listened.
    worker_code = ("import socket, sys\n"
                   "with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as c:\n"
                   "    c.sendall(b'%d\\n' % (int(sys.argv[3]) * 100))\n")
    config = task_config(master_command={"argv": [sys.executable, "-c", master_code]},
                         worker_command={"argv": [sys.executable, "-c", worker_code, "$MW_MASTER_IP",
                                                  "${MW_MASTER_PORT}", "$MW_PROC_ID"]})
    codes, outputs = run_job(config, ntasks=4)
    assert codes == [0, 0, 0, 0], outputs
    assert "sum=600" in outputs[0][0].splitlines()


def test_env_reaches_the_commands_and_the_mw_names_win():
    config = task_config(master_command={"shell": "echo $GREETING-$MW_PROC_ID-of-$MW_NUM_PROC-$MW_MASTER_HOST"},
                         worker_command={"shell": "true"}, master_listens=False, env_names=["GREETING", "MW_PROC_ID"])
    codes, outputs = run_job(config, ntasks=2, env={"GREETING": "hello", "MW_PROC_ID": "overridden"})
    assert codes == [0, 0]
    assert "hello-0-of-2-unit-node" in outputs[0][0].splitlines()


def test_a_master_that_exits_before_listening_is_reported():
    config = task_config(master_command={"shell": "exit 3"}, worker_command={"shell": "true"})
    master = start_task(0, 2, config, keep_stdin=False)
    stdout = finish(master)[0]
    status = status_of((stdout, ""))
    assert master.returncode == 1
    assert "exited with code 3 before it listened" in status["error"]


def test_a_master_command_that_does_not_exist_is_reported():
    config = task_config(master_command={"argv": ["/nonexistent/master"]}, worker_command={"shell": "true"})
    master = start_task(0, 2, config, keep_stdin=False)
    stdout = finish(master)[0]
    assert "cannot start the master command '/nonexistent/master'" in status_of((stdout, ""))["error"]


def test_a_worker_whose_master_never_came_up_stops_at_end_of_input():
    worker = start_task(1, 2, task_config())
    worker.stdin.close()
    stdout = finish(worker)[0]
    assert worker.returncode == 1
    assert "the master (rank 0) ended before it was ready" in status_of((stdout, ""))["error"]


def test_a_worker_waits_for_the_master_only_within_its_bound():
    worker = start_task(1, 2, task_config(connect_timeout=0.5))
    started = time.monotonic()
    stdout = finish(worker)[0]
    worker.stdin.close()
    assert worker.returncode == 1 and time.monotonic() - started < 10
    assert "got no master address within 0.5 s" in status_of((stdout, ""))["error"]


def test_a_self_test_master_names_workers_that_never_came():
    master = start_task(0, 3, task_config(connect_timeout=0.5), keep_stdin=False)
    stdout = finish(master)[0]
    status = status_of((stdout, ""))
    assert master.returncode == 1
    assert status["workers_missing"] == [1, 2] and "ranks 1, 2 never checked in" in status["error"]


def check_in(ready, message):
    """One connection to the self-test master, as a worker (or anyone else on the network) makes it."""
    with socket.create_connection((ready["ip"], ready["port"]), timeout=5) as connection:
        connection.sendall((json.dumps(message) + "\n").encode())
        return json.loads(connection.makefile().readline() or "{}")


def test_a_self_test_master_counts_only_its_own_workers_once_each():
    master = start_task(0, 3, task_config(connect_timeout=3), keep_stdin=False)
    seen = []
    ready = read_ready(master, seen)
    good = {"rank": 1, "host": "unit-node", "token": CHECK_IN_TOKEN}
    replies = [check_in(ready, message) for message in (
        {"rank": 1, "host": "intruder"},                          # no token
        dict(good, token="guessed"),                              # wrong token
        dict(good, rank=0), dict(good, rank=3), dict(good, rank=-1),  # no worker's rank
        good,
        dict(good, host="again"),                                 # rank 1 a second time
    )]
    assert [reply.get("ok") is True for reply in replies] == [False, False, False, False, False, True, False]
    stdout = "".join(seen) + finish(master)[0]
    status = status_of((stdout, ""))
    assert [(worker["rank"], worker["host"]) for worker in status["workers_connected"]] == [(1, "unit-node")]
    assert status["workers_missing"] == [2] and master.returncode == 1


@pytest.mark.parametrize("secrets, complaint", [
    ("", "standard input ended or was garbled before the job secrets came"),
    ("not json\n", "standard input ended or was garbled before the job secrets came"),
    (json.dumps({"env": {"OTHER": "x"}, "check_in_token": "t"}) + "\n", "the job secrets on standard input are not this job's"),
    (json.dumps({"env": {}}) + "\n", "the job secrets on standard input are not this job's"),
])
def test_a_task_without_its_secrets_says_so(secrets, complaint):
    task = start_task(1, 2, task_config(env_names=[]), secrets=secrets, keep_stdin=False)
    status = status_of((finish(task)[0], ""))
    assert task.returncode == 1 and complaint in status["error"]


def test_a_task_waits_for_its_secrets_only_within_its_bound():
    task = start_task(0, 2, task_config(connect_timeout=0.5), secrets="")
    started = time.monotonic()
    stdout = finish(task)[0]
    task.stdin.close()
    assert time.monotonic() - started < 10
    assert "got no job secrets on its standard input within 0.5 s" in status_of((stdout, ""))["error"]
