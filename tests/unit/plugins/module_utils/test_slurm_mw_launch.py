"""Submit-host side: the result channel from the batch host, the local launcher run, and how
results become the module's outcome."""
import json
import os
import socket
import sys
import threading
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.hpc.slurm.plugins.module_utils.slurm_cli import Deadline, parse_scontrol_record
from ansible_collections.hpc.slurm.plugins.module_utils.slurm_mw_driver import MARKER, send_result
from ansible_collections.hpc.slurm.plugins.module_utils.slurm_mw_launch import (
    LocalRun,
    MasterWorkerJob,
    ResultListener,
    describe_failures,
    driver_source,
    job_summary,
    result_from_output,
    task_config,
)


def test_the_driver_travels_as_its_own_source_text():
    source = driver_source()
    assert source.startswith("# -*- coding: utf-8 -*-") and "class Launcher" in source
    compile(source, "slurm_mw_driver", "exec")


def test_commands_become_argv_or_shell_for_the_driver():
    params = {"master_command": ["prog", 3], "worker_command": "echo $MW_PROC_ID", "connect_timeout": 5.0,
              "env": {"A": 1}}
    config = task_config(params)
    assert config["master_command"] == {"argv": ["prog", "3"]}
    assert config["worker_command"] == {"shell": "echo $MW_PROC_ID"}
    assert config["env_names"] == ["A"] and config["master_listens"] is True
    assert "1" not in json.dumps({key: value for key, value in config.items() if key != "master_command"})
    assert task_config({"connect_timeout": 1})["master_command"] is None


def test_the_batch_result_arrives_over_tcp_and_wakes_the_wait():
    listener = ResultListener()
    try:
        callback = dict(listener.callback(), hosts=["127.0.0.1"], token=listener.token)
        sender = threading.Thread(target=send_result, args=(callback, {"ok": True, "tasks": []}))
        sender.start()
        deadline = Deadline(10)
        listener.pause(10)
        sender.join(10)
        assert listener.result == {"ok": True, "tasks": []}
        assert deadline.elapsed() < 5
    finally:
        listener.close()


def test_a_result_with_the_wrong_token_is_ignored():
    listener = ResultListener()
    try:
        forged = dict(listener.callback(), hosts=["127.0.0.1"], token="not-the-token")
        sender = threading.Thread(target=send_result, args=(forged, {"ok": True}))
        sender.start()
        listener.pause(1.0)
        sender.join(10)
        assert listener.result is None
    finally:
        listener.close()


def test_the_result_line_is_found_in_the_job_output(transcripts):
    result = result_from_output(transcripts["step exit codes"]["stdout"])
    assert result["event"] == "result" and result["failed_ranks"] == [0, 2]
    assert result_from_output("no result here\n0: " + MARKER + "{}\n") is None


def test_job_summary_from_real_records(transcripts):
    done = job_summary(parse_scontrol_record(transcripts["scontrol completed"]["stdout"].strip()))
    assert (done["state"], done["exit_code"], done["exit_signal"], done["user"]) == ("COMPLETED", 0, 0, "root")
    assert len(done["nodes"]) == 2 and done["batch_host"] == done["nodes"][0]
    assert done["stdout_path"].startswith("/tmp/slurm-")
    pending = job_summary(parse_scontrol_record(transcripts["scontrol pending"]["stdout"].strip()))
    assert pending["nodes"] == [] and "batch_host" not in pending
    assert job_summary(None) == {}


def test_failures_are_described_by_rank(transcripts):
    exit_codes = result_from_output(transcripts["step exit codes"]["stdout"])
    [message] = describe_failures(exit_codes)
    assert message.startswith("ranks 0, 2 failed (rank 0 on ")
    assert "exit code 3" in message and "exit code 5" in message

    unreachable = result_from_output(transcripts["step unreachable master"]["stdout"])
    [message] = describe_failures(unreachable)
    assert message.startswith("self-test: ranks 2, 3 never checked in with the master at 127.0.0.1:")
    assert "Connection refused" in message

    killed = result_from_output(transcripts["step driver killed"]["stdout"])
    assert describe_failures(killed) == ["rank 3 failed (rank 3 on %s: signal Killed, srun: Killed)"
                                         % killed["tasks"][3]["host"]]


def launcher_stand_in(lines, then_sleep=0.0):
    """A process printing launcher-style lines: LocalRun parses what any child prints."""
    code = "import sys, time\nfor line in %r:\n    print(line, flush=True)\ntime.sleep(%r)\n" % (lines, then_sleep)
    return [sys.executable, "-c", code]


def test_local_run_follows_the_job_id_and_the_result():
    result = {"event": "result", "ok": True, "job_id": "17", "tasks": []}
    run = LocalRun(launcher_stand_in([MARKER + json.dumps({"event": "job", "job_id": "17"}), "0: hello",
                                      MARKER + json.dumps(result)]), tail_lines=5)
    assert run.wait(Deadline(30)) is True
    assert (run.job_id, run.result["ok"], run.returncode) == ("17", True, 0)
    assert list(run.stdout) == ["0: hello"]


def test_local_run_learns_the_job_id_from_salloc():
    run = LocalRun([sys.executable, "-c", "import sys; sys.stderr.write('salloc: Granted job allocation 31\\n')"], 5)
    assert run.wait(Deadline(30)) and run.job_id == "31"


def test_local_run_stops_at_the_deadline_and_ends_the_whole_process_group():
    run = LocalRun([sys.executable, "-c", "import subprocess; subprocess.run(['sleep', '60'])"], 5)
    deadline = Deadline(0.5)
    assert run.wait(deadline) is False
    run.stop()
    assert run.process.poll() is not None and deadline.elapsed() < 15
    group_gone = Deadline(10)
    while not group_gone.expired():
        try:
            os.killpg(run.process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the launcher's child (sleep 60) outlived stop()")


def test_the_launcher_is_told_every_name_of_this_host():
    listener = ResultListener()
    try:
        names = listener.callback()["hosts"]
    finally:
        listener.close()
    assert names[0] == socket.gethostname()
    assert not any(name.startswith("127.") for name in names)


class WithoutAccounting:
    """The only Slurm command an outcome runs is sacct; here accounting is off."""

    def job_accounting(self, job_id):
        return [], "Slurm accounting storage is disabled"


def job_for_outcomes(warnings=None):
    with patch_module_args({}):
        module = AnsibleModule(argument_spec={})
    if warnings is not None:
        # Where warnings end up depends on whether controller code was imported: keep them here.
        module.warn = warnings.append
    return MasterWorkerJob(module, WithoutAccounting(), {"mode": "batch", "poll_interval": 1})


def test_a_completed_job_without_its_result_succeeds_with_a_warning(transcripts):
    warnings = []
    job = job_for_outcomes(warnings)
    record = parse_scontrol_record(transcripts["scontrol completed"]["stdout"].strip())
    outcome = job.outcome(int(record["JobId"]), record, None, launcher_rc=None)
    assert "failed" not in outcome and outcome["state"] == "COMPLETED"
    assert len(warnings) == 1 and "did not reach this host" in warnings[0]


def test_a_failed_job_without_its_result_fails(transcripts):
    job = job_for_outcomes()
    record = parse_scontrol_record(transcripts["scontrol failed"]["stdout"].strip())
    outcome = job.outcome(int(record["JobId"]), record, None, launcher_rc=None)
    assert outcome["failed"] and outcome["rc"] == 3
    assert "reported no result (it ended in state FAILED with exit code 3" in outcome["msg"]


def test_a_master_that_never_became_ready_is_the_whole_story():
    tasks = [{"rank": 0, "host": "n1", "exit_code": 1,
              "error": "network interface 'ib0' has no IPv4 address on n1 (No such device)"}]
    tasks += [{"rank": rank, "host": "n2", "exit_code": 1,
               "error": "rank %d on n2: the master (rank 0) ended before it was ready" % rank} for rank in (1, 2)]
    result = {"master": None, "tasks": tasks, "failed_ranks": [0, 1, 2], "workers_missing": [1, 2], "srun_rc": 1}
    assert describe_failures(result) == [
        "the master (rank 0 on n1) never became ready: exit code 1, network interface 'ib0' has no IPv4 address "
        "on n1 (No such device)"]
