"""Argument building and output parsing of plugins/module_utils/slurm_cli.py, on real output."""
import subprocess

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.hpc.slurm.plugins.module_utils.slurm_cli import (
    Deadline,
    SlurmCli,
    allocation_args,
    base_state,
    batch_script,
    check_slurm_options,
    is_capacity_error,
    parse_exit_code,
    parse_sacct_job,
    parse_sbatch_parsable,
    parse_scontrol_record,
    parse_scontrol_records,
    parse_sinfo_partitions,
    parse_test_only,
    slurm_error_messages,
    step_args,
    wait_for_end,
)


# --------------------------------------------------------------------------- scontrol

def test_scontrol_record_of_a_finished_job(transcripts):
    submitted = parse_sbatch_parsable(transcripts["sbatch completes"]["stdout"])
    record = parse_scontrol_record(transcripts["scontrol completed"]["stdout"].strip())
    assert int(record["JobId"]) == submitted
    assert (record["JobState"], record["ExitCode"], record["NodeList"]) == ("COMPLETED", "0:0", record["NodeList"])
    assert record["NumTasks"] == "4" and record["NumNodes"] == "2"
    # Values may hold spaces: the job name and the comment were submitted with them.
    assert record["JobName"] == "rec ok"
    assert record["Comment"] == "two words here"
    assert record["WorkDir"] == "/tmp"
    assert record["StdOut"] == "/tmp/slurm-%d.out" % submitted
    assert record["AllocNode:Sid"].split(":")[0].endswith("ctl")


@pytest.mark.parametrize("run, state, exit_code", [
    ("scontrol failed", "FAILED", (3, 0)),
    ("scontrol running", "RUNNING", (0, 0)),
    # A cancelled batch job's exit code depends on which process the signal reached first.
    ("scontrol cancelled", "CANCELLED", None),
    ("scontrol pending", "PENDING", (0, 0)),
])
def test_scontrol_states_and_exit_codes(transcripts, run, state, exit_code):
    records = parse_scontrol_records(transcripts[run]["stdout"])
    assert len(records) == 1
    assert base_state(records[0]["JobState"]) == state
    code, signal_number = parse_exit_code(records[0]["ExitCode"])
    assert isinstance(code, int) and isinstance(signal_number, int)
    if exit_code is not None:
        assert (code, signal_number) == exit_code


def test_a_pending_job_has_no_nodes_yet(transcripts):
    record = parse_scontrol_record(transcripts["scontrol pending"]["stdout"].strip())
    assert record["NodeList"] == "" and record["StartTime"] == "Unknown"


def test_unknown_job_id_is_an_error_with_no_record(transcripts):
    run = transcripts["scontrol unknown job"]
    assert run["rc"] == 1 and parse_scontrol_records(run["stdout"]) == []
    assert "Invalid job id" in run["stderr"]


def test_state_words_from_every_source():
    assert base_state("CANCELLED by 0") == "CANCELLED"
    assert base_state("COMPLETED+") == "COMPLETED"
    assert base_state(None) == ""
    assert parse_exit_code("garbage") == (None, None)


# --------------------------------------------------------------------------- sbatch

def test_sbatch_parsable_job_id_with_and_without_cluster():
    assert parse_sbatch_parsable("42\n") == 42
    assert parse_sbatch_parsable("42;cluster2\n") == 42
    assert parse_sbatch_parsable("") is None


def test_test_only_says_what_the_job_would_get(transcripts):
    run = transcripts["test-only fits"]
    assert run["rc"] == 0
    found = parse_test_only(run["stderr"])
    assert found["processors"] == 4 and found["partition"] == "debug"
    assert found["nodes"].endswith("n[1-2]")
    assert found["job_id"].isdigit()


@pytest.mark.parametrize("run", ["test-only unknown partition", "sbatch unknown partition",
                                 "srun unknown partition", "salloc unknown partition"])
def test_unknown_partition_messages(transcripts, run):
    recorded = transcripts[run]
    messages = slurm_error_messages(recorded["stderr"])
    assert recorded["rc"] == 1
    assert messages[0] == "invalid partition specified: no-such-partition"
    assert messages[-1].endswith("Invalid partition name specified")
    assert not is_capacity_error(messages)


def test_srun_test_only_says_the_same(transcripts):
    found = parse_test_only(transcripts["srun test-only fits"]["stderr"])
    assert found["processors"] == 4 and found["partition"] == "debug"
    assert slurm_error_messages(transcripts["srun test-only too many tasks"]["stderr"]) == [
        "Requested node configuration is not available"]


def test_an_unknown_option_is_no_error_line(transcripts):
    """sbatch and srun print 'unrecognized option' without 'error:'; the module shows the first line."""
    for run in ("srun test-only unknown option", "sbatch unknown option"):
        recorded = transcripts[run]
        assert recorded["rc"] == 255 and slurm_error_messages(recorded["stderr"]) == []
        assert "unrecognized option" in recorded["stderr"].splitlines()[0]


@pytest.mark.parametrize("run", ["test-only too many tasks", "srun test-only too many tasks"])
def test_too_many_tasks_is_a_capacity_error(transcripts, run):
    recorded = transcripts[run]
    messages = slurm_error_messages(recorded["stderr"])
    assert recorded["rc"] == 1
    assert messages == ["Requested node configuration is not available"]
    assert is_capacity_error(messages)


# --------------------------------------------------------------------------- sinfo, sacct

def test_sinfo_partitions(transcripts):
    partitions = parse_sinfo_partitions(transcripts["sinfo partitions"]["stdout"])
    assert partitions == [{"partition": "debug", "default": True, "nodes": 2, "cpus": 4, "cpus_idle": 4,
                           "available": "up"}]


def test_sacct_without_accounting_gives_no_record(transcripts):
    run = transcripts["sacct without accounting"]
    assert run["rc"] == 1 and "accounting storage is disabled" in run["stderr"]
    assert parse_sacct_job(run["stdout"]) is None


def test_sacct_record_in_its_parsable_form():
    # sacct --parsable2 output of a cluster with accounting: allocation line first.
    record = parse_sacct_job("77|CANCELLED by 1000|0:15|00:00:04|node[1-2]\n")
    assert record == {"JobId": "77", "JobState": "CANCELLED", "ExitCode": "0:15", "RunTime": "00:00:04",
                      "NodeList": "node[1-2]"}


# --------------------------------------------------------------------------- arguments

def test_allocation_args_in_fixed_order_then_the_users_options():
    params = {"ntasks": 16, "nodes": "2-4", "ntasks_per_node": None, "cpus_per_task": 2, "partition": "gpu",
              "time_limit": "00:10:00", "job_name": "my job; rm -rf /", "slurm_options": ["--overcommit", "--mem=1G"]}
    assert allocation_args(params) == [
        "--ntasks=16", "--nodes=2-4", "--cpus-per-task=2", "--partition=gpu", "--time=00:10:00",
        "--job-name=my job; rm -rf /", "--overcommit", "--mem=1G"]


def test_step_args_repeat_what_srun_no_longer_inherits():
    assert step_args({"ntasks": 4, "cpus_per_task": 2, "chdir": "/scratch/run 1"}) == [
        "--label", "--input=all", "--ntasks=4", "--cpus-per-task=2", "--chdir=/scratch/run 1"]
    assert step_args({"ntasks": 1}) == ["--label", "--input=all", "--ntasks=1"]


@pytest.mark.parametrize("options, mode, complaint", [
    (["--mem", "1G"], "batch", "'1G' is not an option"),
    (["--wrap=hostname"], "batch", "--wrap"),
    (["--output=/tmp/x"], "interactive", "redirects the step's input or output"),
    (["-l"], "interactive", "redirects"),
])
def test_unsafe_or_malformed_slurm_options_are_refused(options, mode, complaint):
    problems = check_slurm_options(options, mode)
    assert problems and complaint in problems[0]


# Every form in which getopt_long (sbatch, srun, salloc) reads a banned option.
@pytest.mark.parametrize("options, mode, named", [
    (["--wrap=hostname"], "batch", "--wrap"),
    (["--wra=hostname"], "batch", "--wrap"),
    (["--w"], "batch", "--wrap"),
    (["--wrap", "hostname"], "batch", "--wrap"),
    (["--wrap hostname"], "batch", "--wrap"),
    (["--wrap=hostname"], "allocation", "--wrap"),
    (["--outp=/tmp/x"], "interactive", "--output"),
    (["--ou"], "interactive", "--output"),
    (["--output", "/tmp/x"], "interactive", "--output"),
    (["--output /tmp/x"], "interactive", "--output"),
    (["--inp=none"], "interactive", "--input"),
    (["--err=/dev/null"], "interactive", "--error"),
    (["--lab"], "interactive", "--label"),
    (["--pt"], "interactive", "--pty"),
    (["-o/tmp/x"], "interactive", "-o (--output)"),
    (["-o", "/tmp/x"], "interactive", "-o (--output)"),
    (["-i0"], "interactive", "-i (--input)"),
    (["-e/dev/null"], "interactive", "-e (--error)"),
    (["-l"], "interactive", "-l (--label)"),
    (["-vl"], "interactive", "-l (--label)"),
    (["-lo/tmp/x"], "interactive", "-o (--output)"),
    (["-Eo/tmp/x"], "interactive", "-o (--output)"),
])
def test_banned_options_are_found_in_every_form_slurm_reads(options, mode, named):
    problems = check_slurm_options(options, mode)
    assert any("%r means %s" % (item, named) in problem for problem in problems for item in options), problems


@pytest.mark.parametrize("options, mode", [
    (["-Jlo"], "interactive"),  # -J takes the rest, "lo", as the job name
    (["-c2", "--cpus-per-task=2", "--open-mode=append", "--partition=main"], "interactive"),
    (["--output=/scratch/%j.out", "-o/scratch/%j.out", "-e/scratch/err", "--input=/dev/null"], "batch"),
    (["--overcommit", "--mem=1G"], "allocation"),
])
def test_options_that_only_look_like_banned_ones_are_fine(options, mode):
    assert check_slurm_options(options, mode) == []


@pytest.mark.parametrize("item", ["--", "-", "--=x", "-- --wrap=x", "hostname"])
def test_items_that_are_no_option_are_refused(item):
    assert check_slurm_options([item], "batch") == [
        "slurm_options item %r is not an option; give each one as '--name=value'" % item]


def test_output_options_are_fine_for_a_batch_job():
    assert check_slurm_options(["--output=/scratch/%j.out", "--mem=1G", "-c2"], "batch") == []


def test_batch_script_survives_the_shell_unchanged(tmp_path):
    """Whatever the arguments hold, sh hands the launcher exactly the same argv."""
    hostile = ["-c", "print('it''s')", 'a "quoted" $HOME `id` \\ word', "line\nbreak", "{\"json\": [1, 2]}"]
    script = batch_script("python3", hostile)
    assert script.startswith("#!/bin/sh\n")
    probe = tmp_path / "argv.sh"
    probe.write_text(script.replace("exec python3", "exec printf '%s\\0'", 1))
    printed = subprocess.run(["sh", str(probe)], capture_output=True, check=True).stdout
    assert printed.decode().split("\0")[:-1] == hostile


# --------------------------------------------------------------------------- waiting

class FakeClock:
    """Time that moves only when the waiter pauses: the deadline logic without real sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.pauses = []

    def __call__(self):
        return self.now

    def pause(self, seconds):
        self.pauses.append(seconds)
        self.now += seconds


def records_from(transcripts, *runs):
    return [parse_scontrol_record(transcripts[run]["stdout"].strip()) for run in runs]


def test_waits_through_pending_and_running_until_a_terminal_state(transcripts):
    clock = FakeClock()
    states = iter(records_from(transcripts, "scontrol pending", "scontrol running", "scontrol failed"))
    record, timed_out = wait_for_end(lambda: next(states), Deadline(60, clock), 2, clock.pause)
    assert (timed_out, base_state(record["JobState"])) == (False, "FAILED")
    assert clock.pauses == [2, 2]


def test_times_out_on_the_monotonic_deadline_with_the_last_state(transcripts):
    clock = FakeClock()
    running = records_from(transcripts, "scontrol running")[0]
    deadline = Deadline(5, clock)
    record, timed_out = wait_for_end(lambda: running, deadline, 2, clock.pause)
    assert timed_out and base_state(record["JobState"]) == "RUNNING"
    assert clock.pauses == [2, 2, 1] and deadline.elapsed() == 5


def test_a_vanished_record_keeps_the_last_one_seen(transcripts):
    clock = FakeClock()
    seen = iter(records_from(transcripts, "scontrol running") + [None, None])
    record, timed_out = wait_for_end(lambda: next(seen), Deadline(3, clock), 1.5, clock.pause)
    assert timed_out and base_state(record["JobState"]) == "RUNNING"


def test_show_job_keeps_the_controllers_error_and_goes_on(transcripts, tmp_path, monkeypatch):
    run = transcripts["scontrol without controller"]
    scontrol = tmp_path / "scontrol"
    scontrol.write_text("#!/bin/sh\nexit 99\n")
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with patch_module_args({}):
        module = AnsibleModule(argument_spec={})
    monkeypatch.setattr(module, "run_command", lambda argv, **kwargs: (run["rc"], run["stdout"], run["stderr"]))
    cli = SlurmCli(module, ["scontrol"])
    assert cli.show_job(1) is None
    assert cli.query_error == "slurm_load_jobs error: Unable to contact slurm controller (connect failure)"
    assert cli.commands == [[str(scontrol), "--oneliner", "show", "job", "1"]]
