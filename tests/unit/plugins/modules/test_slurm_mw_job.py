"""The module as Ansible runs it: argument checks, missing Slurm, and whole runs replayed from
recorded real Slurm output (tests/unit/fixtures/transcripts)."""
import json
import os
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hpc.slurm.plugins.modules import slurm_mw_job
from module_harness import put_commands_on_path, run_main

TRANSCRIPT_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "transcripts"
VERSIONS = sorted(path.stem for path in TRANSCRIPT_DIR.glob("debian*.yaml"))
SLURM_COMMANDS = ("sbatch", "srun", "salloc", "scontrol", "scancel", "sinfo", "sacct")


def run_module(args, capsys):
    return run_main(slurm_mw_job, args, capsys)


@pytest.fixture
def slurm_on_path(tmp_path, monkeypatch):
    return put_commands_on_path(tmp_path, monkeypatch, SLURM_COMMANDS)


class Replay:
    """Answers run_command with recorded runs, in order, checking each is the expected command."""

    def __init__(self, version, names):
        runs = {run["name"]: run for run in yaml.safe_load((TRANSCRIPT_DIR / f"{version}.yaml").read_text())["runs"]}
        self.pending = [runs[name] for name in names]
        self.calls = []

    def run_command(self, args, **kwargs):
        """Stands in for AnsibleModule.run_command: set on the class as this bound method."""
        self.calls.append((list(args), kwargs))
        assert self.pending, "unexpected command %s" % args
        run = self.pending.pop(0)
        assert os.path.basename(args[0]) == run["cmd"][0], (args, run["cmd"])
        return run["rc"], run["stdout"], run["stderr"]


@pytest.fixture(params=VERSIONS)
def replay(request, monkeypatch, slurm_on_path):
    def install(*names):
        player = Replay(request.param, names)
        monkeypatch.setattr(AnsibleModule, "run_command", player.run_command)
        return player
    return install


@pytest.mark.parametrize("args, complaint", [
    ({"ntasks": 0}, "ntasks must be at least 1 (rank 0 is the master), got 0"),
    ({"ntasks": -3}, "ntasks must be at least 1"),
    ({"cpus_per_task": 0}, "cpus_per_task must be at least 1"),
    ({"wait_timeout": 0}, "wait_timeout must be more than 0 seconds"),
    ({"connect_timeout": -1}, "connect_timeout must be more than 0 seconds"),
    ({"master_port": 70000}, "master_port must be between 0 and 65535"),
    ({"mode": "interactive", "wait": False}, "wait=false needs mode=batch"),
    ({"master_command": [], "worker_command": "true"}, "master_command as a list must be a non-empty list"),
    ({"master_command": {"a": 1}, "worker_command": "true"}, "master_command must be a string"),
    ({"master_command": "   ", "worker_command": "true"}, "master_command must be a string"),
    ({"slurm_options": ["--mem", "1G"]}, "'1G' is not an option"),
    ({"wait_timeout": "nan"}, "wait_timeout must be a number of seconds up to 1e+09, got nan"),
    ({"connect_timeout": "inf"}, "connect_timeout must be a number of seconds up to 1e+09, got inf"),
    ({"poll_interval": "-inf"}, "poll_interval must be a number of seconds up to 1e+09, got -inf"),
    ({"wait_timeout": 1e12}, "wait_timeout must be a number of seconds up to 1e+09"),
    ({"slurm_options": ["--wra=hostname"]}, "'--wra=hostname' means --wrap to sbatch"),
    ({"mode": "interactive", "slurm_options": ["-lo/tmp/x"]}, "'-lo/tmp/x' means -l (--label) to srun"),
])
def test_bad_requests_fail_before_any_command(args, complaint, capsys, slurm_on_path, monkeypatch):
    player = Replay(VERSIONS[0], [])
    monkeypatch.setattr(AnsibleModule, "run_command", player.run_command)
    status, result = run_module(args, capsys)
    assert status == 1 and result["failed"]
    assert complaint in result["msg"]


def test_one_command_alone_is_refused(capsys, slurm_on_path):
    status, result = run_module({"master_command": "serve"}, capsys)
    assert status == 1 and "parameters are required together: master_command, worker_command" in result["msg"]


@pytest.mark.parametrize("mode, first_missing", [("batch", "sbatch"), ("interactive", "srun"),
                                                 ("allocation", "salloc")])
def test_missing_slurm_commands_are_named(mode, first_missing, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    status, result = run_module({"mode": mode}, capsys)
    assert status == 1
    assert result["msg"].startswith('Failed to find required executable "%s"' % first_missing)


def test_srun_missing_is_named_in_interactive_mode(capsys, slurm_on_path):
    (slurm_on_path / "srun").unlink()
    status, result = run_module({"mode": "interactive"}, capsys)
    assert status == 1 and 'required executable "srun"' in result["msg"]


def test_check_mode_only_asks_sbatch_test_only(replay, capsys):
    player = replay("test-only fits")
    status, result = run_module({"ntasks": 4, "nodes": "2", "job_name": "rec", "_ansible_check_mode": True}, capsys)
    assert status == 0 and result["changed"] and "job_id" not in result
    assert result["test_only"]["processors"] == 4
    # No job, so no sacct either: the only command is the test-only submission.
    assert "accounting" not in result and "accounting_unavailable" not in result
    [(argv, kwargs)] = player.calls
    assert argv[1:] == ["--test-only", "--ntasks=4", "--nodes=2", "--job-name=rec"]
    assert kwargs["data"].startswith("#!/bin/sh\n") and kwargs["environ_update"]["LC_ALL"] == "C"
    assert result["step_cmd"][:4] == ["srun", "--label", "--input=all", "--ntasks=4"]


def test_unknown_partition_fails_with_slurms_reason_and_the_command(replay, capsys):
    replay("test-only unknown partition")
    status, result = run_module({"partition": "no-such-partition"}, capsys)
    assert status == 1
    assert result["msg"] == ("Slurm rejected the job (sbatch --test-only): invalid partition specified: "
                             "no-such-partition; Invalid partition name specified")
    assert result["rc"] == 1 and "--partition=no-such-partition" in result["cmd"]
    assert "Invalid partition name specified" in result["stderr"] and result["stdout"] == ""


def test_too_many_tasks_fails_with_the_partitions_size(replay, capsys):
    player = replay("test-only too many tasks", "sinfo partitions")
    status, result = run_module({"ntasks": 512}, capsys)
    assert status == 1
    assert result["msg"].startswith("Slurm rejected the job (sbatch --test-only): Requested node configuration "
                                    "is not available; partition debug has 4 CPUs on 2 nodes")
    assert os.path.basename(result["cmd"][0]) == "sbatch"
    assert len(player.calls) == 2


def test_batch_submission_rejected_after_validation_is_reported(replay, capsys):
    replay("test-only fits", "sbatch unknown partition")
    status, result = run_module({"ntasks": 4, "wait": False}, capsys)
    assert status == 1
    assert result["msg"].startswith("Slurm rejected the job (sbatch): ")
    assert "--parsable" in result["cmd"]


def test_submit_without_waiting_returns_the_job_and_its_state(replay, capsys):
    player = replay("test-only fits", "sbatch queued", "scontrol pending")
    status, result = run_module({"ntasks": 1, "wait": False, "job_name": "rec-queued"}, capsys)
    assert status == 0 and result["changed"] and player.pending == []
    assert result["state"] == "PENDING" and result["user"] == "root"
    # The job has not ended: no accounting yet, and sacct was not asked (the replay refuses it).
    assert "accounting" not in result
    assert player.calls[1][0][1] == "--parsable"
    assert player.calls[2][0][1:] == ["--oneliner", "show", "job", str(result["job_id"])]


def test_interactive_check_mode_asks_srun(replay, capsys):
    player = replay("srun test-only fits")
    status, result = run_module({"mode": "interactive", "ntasks": 4, "nodes": "2", "chdir": "/tmp",
                                 "slurm_options": ["--immediate=5"], "_ansible_check_mode": True}, capsys)
    assert status == 0 and result["test_only"]["processors"] == 4
    [(argv, kwargs)] = player.calls
    assert os.path.basename(argv[0]) == "srun" and kwargs["data"] is None
    assert argv[1:] == ["--test-only", "--ntasks=4", "--nodes=2", "--job-name=mw_job", "--immediate=5",
                        "--chdir=/tmp", "true"]


def test_an_option_slurm_does_not_know_is_named(replay, capsys):
    replay("srun test-only unknown option")
    status, result = run_module({"mode": "allocation", "slurm_options": ["--no-such-option=1"]}, capsys)
    assert status == 1
    assert result["msg"] == "Slurm rejected the job (srun --test-only): srun: unrecognized option '--no-such-option=1'"


def test_a_controller_that_does_not_answer_does_not_end_the_wait(replay, capsys):
    """wait=false reads the state once; an unreachable slurmctld leaves it unknown, not failed."""
    replay("test-only fits", "sbatch queued", "scontrol without controller")
    status, result = run_module({"ntasks": 1, "wait": False}, capsys)
    assert status == 0 and isinstance(result["job_id"], int) and "state" not in result


def test_env_values_are_masked_by_name_in_every_result(capsys, slurm_on_path, monkeypatch):
    """Ansible puts the module's arguments in its result (invocation): env shows names only, and a
    short value such as "1" does not blank out every "1" of the result as no_log's masking would."""
    monkeypatch.setattr(AnsibleModule, "run_command", Replay(VERSIONS[0], []).run_command)
    status, result = run_module({"ntasks": 0, "env": {"API_TOKEN": "s3cr3t-token", "OMP_NUM_THREADS": "1"}}, capsys)
    assert status == 1 and result["msg"] == "ntasks must be at least 1 (rank 0 is the master), got 0"
    assert result["invocation"]["module_args"]["env"] == {"API_TOKEN": "********", "OMP_NUM_THREADS": "********"}
    assert "s3cr3t-token" not in json.dumps(result)


def test_submit_without_waiting_keeps_env_values_in_the_script_only(replay, capsys):
    player = replay("test-only fits", "sbatch queued", "scontrol pending")
    status, result = run_module({"ntasks": 1, "wait": False, "job_name": "rec-queued",
                                 "env": {"API_TOKEN": "s3cr3t-token"}}, capsys)
    assert status == 0 and "s3cr3t-token" not in json.dumps(result)
    assert '"env_names": ["API_TOKEN"]' in " ".join(result["step_cmd"])
    for argv, kwargs in player.calls:
        assert not any("s3cr3t-token" in argument for argument in argv)
    [submitted] = [kwargs["data"] for argv, kwargs in player.calls if "--parsable" in argv]
    [exec_line] = [line for line in submitted.splitlines() if line.startswith("exec ")]
    assert "s3cr3t-token" in submitted and "s3cr3t-token" not in exec_line


@pytest.mark.parametrize("env, complaint", [
    ({"A": {"nested": 1}}, "env values must be strings or numbers"),
    ({"BIG": "x" * 40000}, "at most 32768 fit through the tasks' standard input"),
])
def test_env_that_cannot_travel_is_refused(env, complaint, capsys, slurm_on_path, monkeypatch):
    monkeypatch.setattr(AnsibleModule, "run_command", Replay(VERSIONS[0], []).run_command)
    status, result = run_module({"env": env}, capsys)
    assert status == 1 and complaint in result["msg"]


@pytest.mark.parametrize("section", ["DOCUMENTATION", "EXAMPLES", "RETURN"])
def test_the_documentation_parses(section):
    assert yaml.safe_load(getattr(slurm_mw_job, section))
