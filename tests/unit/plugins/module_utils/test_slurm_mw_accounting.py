"""sacct's records of a job, on real output recorded from Slurm 22.05 and 24.11 with slurmdbd
(tests/unit/fixtures/sacct): parsing, the wait for the record of the job's end, and what the
module returns when accounting is off or does not answer."""
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.hpc.slurm.plugins.module_utils import slurm_mw_launch
from ansible_collections.hpc.slurm.plugins.module_utils.slurm_cli import (
    ACCOUNTING_DISABLED,
    SACCT_FIELDS,
    Deadline,
    SlurmCli,
    accounting_finished,
    parse_sacct_records,
    sacct_argv,
    wait_for_accounting,
)
from ansible_collections.hpc.slurm.plugins.module_utils.slurm_mw_launch import MasterWorkerJob

SACCT_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "sacct"
VERSIONS = sorted(path.stem for path in SACCT_DIR.glob("debian*.yaml"))


@pytest.fixture(params=VERSIONS)
def sacct_runs(request):
    document = yaml.safe_load((SACCT_DIR / f"{request.param}.yaml").read_text())
    return {run["name"]: run for run in document["runs"]}


def records(run):
    assert run["rc"] == 0, run["stderr"]
    return parse_sacct_records(run["stdout"])


def allocation_and_steps(found):
    allocation, steps = found[0], found[1:]
    assert allocation["step"] is None and all(step["step"] for step in steps)
    return allocation, {step["step"]: step for step in steps}


def test_the_recorded_command_is_the_modules(sacct_runs):
    for run in sacct_runs.values():
        assert run["cmd"] == sacct_argv("sacct", run["cmd"][-1].split("=")[1])
    assert "--format=" + ",".join(SACCT_FIELDS) in run["cmd"]


def test_a_completed_batch_job_with_two_steps(sacct_runs):
    allocation, steps = allocation_and_steps(records(sacct_runs["sacct completed with steps"]))
    # A "|" in the job name survives: JobName is the last column.
    assert (allocation["job_name"], allocation["state"], allocation["exit_code"]) == ("rec ok|piped", "COMPLETED", 0)
    assert allocation["user"] == "alice" and allocation["partition"] == "debug"
    assert allocation["job_id"].isdigit() and allocation["node_list"].startswith("rec-")
    assert isinstance(allocation["elapsed_seconds"], int) and allocation["alloc_cpus"] >= 1
    assert {"batch", "0", "1"} <= set(steps)
    assert (steps["0"]["job_name"], steps["1"]["job_name"]) == ("hostname", "true")
    assert steps["batch"]["job_id"] == allocation["job_id"] + ".batch" and steps["batch"]["user"] == ""
    assert all(step["state"] == "COMPLETED" and step["exit_code"] == 0 for step in steps.values())
    assert accounting_finished(records(sacct_runs["sacct completed with steps"]), allocation["job_id"])


def test_a_failed_job_and_its_failed_step_keep_their_own_exit_codes(sacct_runs):
    allocation, steps = allocation_and_steps(records(sacct_runs["sacct failed"]))
    assert (allocation["state"], allocation["exit_code"], allocation["exit_signal"]) == ("FAILED", 3, 0)
    assert (steps["0"]["state"], steps["0"]["exit_code"]) == ("FAILED", 5)


def test_a_record_that_disagrees_with_slurmctld_is_not_finished_yet(sacct_runs):
    """Slurm 22.05 was seen (molecule/accounting) to record a failed job first as FAILED with exit
    code 0:0, and its exit code only a moment later: the wait holds out for slurmctld's own view."""
    found = records(sacct_runs["sacct failed"])
    allocation = found[0]
    assert accounting_finished(found, allocation["job_id"], {"state": "FAILED", "exit_code": 3})
    assert not accounting_finished(found, allocation["job_id"], {"state": "FAILED", "exit_code": 0})
    assert not accounting_finished(found, allocation["job_id"], {"state": "COMPLETED", "exit_code": 3})
    # What slurmctld no longer knows is not compared.
    assert accounting_finished(found, allocation["job_id"], {"state": None, "exit_code": None})


def test_a_running_job_is_not_finished(sacct_runs):
    for name in ("sacct running", "sacct running with its step"):
        found = records(sacct_runs[name])
        allocation = found[0]
        assert (allocation["state"], allocation["end"]) == ("RUNNING", "Unknown")
        assert not accounting_finished(found, allocation["job_id"])


def test_a_cancelled_job_loses_sacct_s_by_uid(sacct_runs):
    run = sacct_runs["sacct cancelled"]
    assert "CANCELLED by " in run["stdout"]
    allocation, steps = allocation_and_steps(records(run))
    assert allocation["state"] == "CANCELLED" and allocation["end"] != "Unknown"
    assert accounting_finished(records(run), allocation["job_id"])


def test_a_job_past_its_time_limit(sacct_runs):
    allocation, steps = allocation_and_steps(records(sacct_runs["sacct timeout"]))
    assert allocation["state"] == "TIMEOUT" and allocation["elapsed_seconds"] >= 60
    assert accounting_finished(records(sacct_runs["sacct timeout"]), allocation["job_id"])


@pytest.mark.parametrize("name", ["sacct srun job", "sacct salloc job"])
def test_jobs_of_the_interactive_launch_modes(sacct_runs, name):
    allocation, steps = allocation_and_steps(records(sacct_runs[name]))
    assert allocation["state"] == "COMPLETED" and "0" in steps and "batch" not in steps


def test_an_unknown_job_has_no_records_and_no_error(sacct_runs):
    run = sacct_runs["sacct unknown job"]
    assert (run["rc"], run["stdout"]) == (0, "")
    assert not accounting_finished(parse_sacct_records(run["stdout"]), 999999)


def test_disabled_accounting_is_recognised_and_a_database_down_is_not(sacct_runs):
    disabled, down = sacct_runs["sacct accounting disabled"], sacct_runs["sacct slurmdbd down"]
    assert disabled["rc"] == 1 and ACCOUNTING_DISABLED in disabled["stderr"]
    assert down["rc"] == 1 and ACCOUNTING_DISABLED not in down["stderr"]


# --------------------------------------------------------------------------- asking and waiting

class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.pauses = []

    def __call__(self):
        return self.now

    def pause(self, seconds):
        self.pauses.append(seconds)
        self.now += seconds


def cli_replaying(runs, monkeypatch, tmp_path, sacct=True):
    """A SlurmCli whose sacct answers with the recorded runs in turn, the last one for ever."""
    if sacct:
        (tmp_path / "sacct").write_text("#!/bin/sh\nexit 99\n")
        (tmp_path / "sacct").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with patch_module_args({}):
        module = AnsibleModule(argument_spec={})
    pending = list(runs)

    def run_command(argv, **kwargs):
        assert kwargs["environ_update"]["LC_ALL"] == "C"
        run = pending.pop(0) if len(pending) > 1 else pending[0]
        return run["rc"], run["stdout"], run["stderr"]

    monkeypatch.setattr(module, "run_command", run_command)
    return SlurmCli(module, [])


def job_id_of(run):
    return run["cmd"][-1].split("=")[1]


def test_job_accounting_runs_sacct_and_returns_sacct_s_error(sacct_runs, monkeypatch, tmp_path):
    cli = cli_replaying([sacct_runs["sacct accounting disabled"]], monkeypatch, tmp_path)
    found, error = cli.job_accounting(7)
    assert found == [] and error == sacct_runs["sacct accounting disabled"]["stderr"].strip()
    assert cli.commands == [sacct_argv(str(tmp_path / "sacct"), 7)]


def test_job_accounting_without_sacct(monkeypatch, tmp_path):
    cli = cli_replaying([], monkeypatch, tmp_path, sacct=False)
    assert cli.job_accounting(7) == ([], "sacct is not installed on this host") and cli.commands == []


def test_the_wait_polls_until_the_allocation_s_end_is_recorded(sacct_runs, monkeypatch, tmp_path):
    running, cancelled = sacct_runs["sacct running with its step"], sacct_runs["sacct cancelled"]
    assert job_id_of(running) == job_id_of(cancelled)
    cli = cli_replaying([running, running, cancelled], monkeypatch, tmp_path)
    clock = FakeClock()
    found, error, finished = wait_for_accounting(lambda: cli.job_accounting(job_id_of(running)), job_id_of(running),
                                                 Deadline(30, clock), 2, clock.pause)
    assert finished and error is None and found[0]["state"] == "CANCELLED"
    assert clock.pauses == [2, 2] and len(cli.commands) == 3


def test_the_wait_ends_on_the_deadline_with_the_last_records(sacct_runs, monkeypatch, tmp_path):
    running = sacct_runs["sacct running"]
    cli = cli_replaying([running], monkeypatch, tmp_path)
    clock = FakeClock()
    deadline = Deadline(5, clock)
    found, error, finished = wait_for_accounting(lambda: cli.job_accounting(job_id_of(running)), job_id_of(running),
                                                 deadline, 2, clock.pause)
    assert not finished and error is None and found[0]["state"] == "RUNNING"
    assert clock.pauses == [2, 2, 1] and deadline.elapsed() == 5


@pytest.mark.parametrize("name", ["sacct accounting disabled", "sacct slurmdbd down"])
def test_an_error_ends_the_wait_at_once(sacct_runs, monkeypatch, tmp_path, name):
    cli = cli_replaying([sacct_runs[name]], monkeypatch, tmp_path)
    clock = FakeClock()
    found, error, finished = wait_for_accounting(lambda: cli.job_accounting(1), 1, Deadline(30, clock), 1,
                                                 clock.pause)
    assert (found, finished, clock.pauses) == ([], False, []) and error


# --------------------------------------------------------------------------- what the module returns

def job_with(cli):
    warnings = []
    cli.module.warn = warnings.append
    return MasterWorkerJob(cli.module, cli, {"mode": "batch", "poll_interval": 0.01}), warnings


def test_records_of_an_ended_job_are_returned_without_warning(sacct_runs, monkeypatch, tmp_path):
    run = sacct_runs["sacct failed"]
    job, warnings = job_with(cli_replaying([run], monkeypatch, tmp_path))
    assert job.accounting(job_id_of(run)) == {"accounting": parse_sacct_records(run["stdout"])}
    assert warnings == []


def test_disabled_accounting_returns_none_with_the_reason_and_no_warning(sacct_runs, monkeypatch, tmp_path):
    job, warnings = job_with(cli_replaying([sacct_runs["sacct accounting disabled"]], monkeypatch, tmp_path))
    found = job.accounting(1)
    assert found["accounting"] == [] and ACCOUNTING_DISABLED in found["accounting_unavailable"]
    assert warnings == []


def test_a_database_that_does_not_answer_is_a_warning(sacct_runs, monkeypatch, tmp_path):
    run = sacct_runs["sacct slurmdbd down"]
    job, warnings = job_with(cli_replaying([run], monkeypatch, tmp_path))
    found = job.accounting(1)
    assert found == {"accounting": [], "accounting_unavailable": run["stderr"].strip()}
    assert len(warnings) == 1 and warnings[0].startswith("no accounting records for job 1: ")


def test_an_end_never_recorded_returns_what_sacct_had_with_a_warning(sacct_runs, monkeypatch, tmp_path):
    monkeypatch.setattr(slurm_mw_launch, "ACCOUNTING_WAIT_SECONDS", 0.05)
    run = sacct_runs["sacct running"]
    job, warnings = job_with(cli_replaying([run], monkeypatch, tmp_path))
    found = job.accounting(job_id_of(run))
    assert found == {"accounting": parse_sacct_records(run["stdout"])}
    assert len(warnings) == 1 and "had not recorded the end of job %s" % job_id_of(run) in warnings[0]
    assert "(allocation state RUNNING)" in warnings[0]


def test_a_job_sacct_never_heard_of_says_so(sacct_runs, monkeypatch, tmp_path):
    monkeypatch.setattr(slurm_mw_launch, "ACCOUNTING_WAIT_SECONDS", 0.05)
    job, warnings = job_with(cli_replaying([sacct_runs["sacct unknown job"]], monkeypatch, tmp_path))
    found = job.accounting(999999)
    assert found["accounting"] == [] and found["accounting_unavailable"].startswith("sacct had no record of job 999999")
    assert "(allocation state not recorded)" in warnings[0]


def test_the_outcome_of_an_ended_job_carries_its_accounting(sacct_runs, monkeypatch, tmp_path):
    run = sacct_runs["sacct completed with steps"]
    job, warnings = job_with(cli_replaying([run], monkeypatch, tmp_path))
    record = {"JobId": job_id_of(run), "JobState": "COMPLETED", "ExitCode": "0:0"}
    result = {"master": {"host": "n1", "ip": "10.0.0.1", "port": 1}, "tasks": [], "failed_ranks": []}
    outcome = job.outcome(job_id_of(run), record, result, launcher_rc=0)
    assert "failed" not in outcome and outcome["state"] == "COMPLETED"
    assert outcome["accounting"] == parse_sacct_records(run["stdout"]) and "accounting_unavailable" not in outcome


def test_a_stand_in_record_is_not_the_end_of_the_wait():
    """Slurm 22.05 showed each finished job as "allocation" of root until its start reached
    slurmdbd (record.py keeps such a run when it sees one; the 24.11 recording had none)."""
    runs = yaml.safe_load((SACCT_DIR / "debian12.yaml").read_text())["runs"]
    stand_ins = [run for run in runs if run["name"].endswith(", stand-in record")]
    assert stand_ins
    for run in stand_ins:
        allocation = records(run)[0]
        assert allocation["state"] in ("COMPLETED", "FAILED")
        assert (allocation["job_name"], allocation["user"], allocation["partition"]) == ("allocation", "root", "")
        assert not accounting_finished(records(run), job_id_of(run))
