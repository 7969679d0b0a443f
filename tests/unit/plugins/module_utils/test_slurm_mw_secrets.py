"""The module's env values and tokens on their whole way, in batch and interactive mode: run
for real on this machine with a stand-in srun (which starts the ranks, labels their output
and copies its standard input to every rank, as srun --label --input=all does), while every
process's command line is sampled. No value may appear on a command line or in the result."""
import hashlib
import json
import os
import subprocess
import sys
import threading
import time

import pytest
from ansible_collections.hpc.slurm.plugins.module_utils.slurm_mw_driver import BOOTSTRAP
from ansible_collections.hpc.slurm.plugins.module_utils.slurm_mw_launch import MasterWorkerJob
from ansible_collections.hpc.slurm.plugins.modules import slurm_mw_job

SECRET = "s3cret-value-%d" % os.getpid()
JOB_ID = "77"

STAND_IN_SRUN = r'''#!PYTHON
import os, subprocess, sys, threading
args, ntasks = sys.argv[1:], 1
while args and args[0].startswith("-"):
    if args[0].startswith("--ntasks="):
        ntasks = int(args[0].split("=", 1)[1])
    args.pop(0)
ranks = [subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env=dict(os.environ, SLURM_PROCID=str(rank), SLURM_NTASKS=str(ntasks),
                                   SLURMD_NODENAME="stand-in", SLURM_JOB_ID=os.environ.get("SLURM_JOB_ID", "@JOB@")))
         for rank in range(ntasks)]
lock = threading.Lock()
def label(rank, pipe):
    for line in pipe:
        with lock:
            sys.stdout.write("%d: %s" % (rank, line.decode()))
            sys.stdout.flush()
def copy_input():
    while True:
        chunk = os.read(0, 65536)
        for process in ranks:
            try:
                if chunk:
                    process.stdin.write(chunk)
                    process.stdin.flush()
                else:
                    process.stdin.close()
            except OSError:
                pass
        if not chunk:
            return
readers = [threading.Thread(target=label, args=(rank, process.stdout)) for rank, process in enumerate(ranks)]
for reader in readers:
    reader.start()
threading.Thread(target=copy_input, daemon=True).start()
codes = [process.wait() for process in ranks]
for reader in readers:
    reader.join()
sys.exit(max(codes))
'''


class CommandLines(object):
    """`ps -eo args -ww` (full width) of every process, sampled until stopped."""

    def __init__(self):
        self.seen = set()
        self.running = True
        self.thread = threading.Thread(target=self.sample)

    def sample(self):
        while self.running:
            listing = subprocess.run(["ps", "-eo", "args", "-ww"], capture_output=True, text=True).stdout
            self.seen.update(listing.splitlines())
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.running = False
        self.thread.join()


class StandInCli(object):
    """SlurmCli's part that the job uses: test-only accepted, sbatch runs the script at once."""

    def __init__(self, bin_dir, scratch):
        self.bin_dir, self.scratch = bin_dir, scratch
        self.commands, self.query_error, self.batch = [], None, None

    def path(self, name):
        return str(self.bin_dir / name)

    def run(self, argv, data=None):
        self.commands.append(list(argv))
        if "--test-only" in argv or os.path.basename(argv[0]) != "sbatch":
            return 0, "", ""
        script = self.scratch / "batch-script"
        script.write_text(data)
        environ = dict(os.environ, PATH="%s:%s" % (self.bin_dir, os.environ["PATH"]), SLURM_JOB_ID=JOB_ID,
                       SLURM_SUBMIT_HOST="localhost")
        self.batch = subprocess.Popen(["sh", str(script)], env=environ, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        return 0, "%s\n" % JOB_ID, ""

    def show_job(self, job_id):
        running = self.batch is not None and self.batch.poll() is None
        return {"JobId": JOB_ID, "JobState": "RUNNING" if running else "COMPLETED", "ExitCode": "0:0",
                "NodeList": "stand-in", "UserId": "root(0)"}

    def job_accounting(self, job_id):
        return [], "Slurm accounting storage is disabled"

    def cancel(self, job_id):
        return 0, "", ""

    def submission_error(self, what, params, rc, stdout, stderr, cmd=None):
        raise AssertionError("%s failed (%s): %s %s" % (what, rc, stdout, stderr))


@pytest.fixture
def stand_in(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text(STAND_IN_SRUN.replace("PYTHON", sys.executable).replace("@JOB@", JOB_ID))
    srun.chmod(0o755)
    return StandInCli(bin_dir, tmp_path)


def job_params(mode):
    params = dict((name, spec.get("default")) for name, spec in slurm_mw_job.argument_spec().items())
    # Each rank checks the value arrived, and lives long enough for the sampling to see it.
    check = ('sleep 1; [ "$(printf %%s "$MW_SECRET" | sha256sum | cut -c1-64)" = %s ] && echo "rank $MW_PROC_ID has it"'
             % hashlib.sha256(SECRET.encode()).hexdigest())
    params.update(mode=mode, ntasks=3, interface="lo", connect_timeout=20, wait_timeout=60, poll_interval=0.2,
                  python_interpreter=sys.executable, job_name="secrets", env={"MW_SECRET": SECRET},
                  master_command=check, worker_command=check, master_listens=False)
    return params


@pytest.mark.parametrize("mode", ["batch", "interactive"])
def test_env_values_reach_every_rank_and_no_command_line_or_result(mode, stand_in):
    job = MasterWorkerJob(None, stand_in, job_params(mode))
    with CommandLines() as command_lines:
        base, outcome = job.run_batch() if mode == "batch" else job.run_local()
    result = dict(base, **outcome)
    assert not result.get("failed"), result
    assert [task["stdout_tail"] for task in result["tasks"]] == [["rank %d has it" % rank] for rank in range(3)]
    ranks_seen = [line for line in command_lines.seen if BOOTSTRAP in line and ' task {"master_command"' in line]
    assert ranks_seen, "the sampling never saw a rank's driver running"
    assert [line for line in command_lines.seen if SECRET in line] == []
    assert SECRET not in json.dumps(result)
    assert "MW_SECRET" in json.dumps(result["step_cmd"])
    assert all(SECRET not in argument for argv in stand_in.commands for argument in argv)


def test_the_batch_script_holds_the_secrets_and_its_exec_line_does_not(stand_in):
    job = MasterWorkerJob(None, stand_in, dict(job_params("batch"), wait=False))
    job.run_batch()
    stand_in.batch.wait(60)
    script = (stand_in.scratch / "batch-script").read_text().splitlines()
    [exec_line] = [line for line in script if line.startswith("exec ")]
    assert SECRET not in exec_line and '"token"' not in exec_line
    assert any(line.startswith("HPC_SLURM_MW_SECRETS=") and SECRET in line for line in script)
