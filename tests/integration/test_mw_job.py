"""hpc.slurm.slurm_mw_job on a real cluster: jobs span the compute nodes in every launch mode,
the user's own programs talk, and every failure path (bad request, failing ranks, unreachable
master, timeout) ends the way the module promises.

Two playbook runs hold all the cases (ansible-playbook's start-up dominates otherwise); the
tests read each task's result from the json callback and check the cluster's side directly.
"""
import hashlib
import json
import re
import threading
import time
import uuid

import pytest

pytestmark = pytest.mark.multinode

SUCCESS_PLAYBOOK = "tests/integration/playbooks/mw_job_success.yml"
FAILURE_PLAYBOOK = "tests/integration/playbooks/mw_job_failures.yml"
SECRETS_PLAYBOOK = "tests/integration/playbooks/mw_job_secrets.yml"
SECRET_TASKS = ("Secret env in batch mode", "Secret env in interactive mode", "Secret env in allocation mode",
                "Secret env in batch mode as the unprivileged user")
JOB_USER = "hpcuser"
NTASKS = 4


def task_results(run_playbook, playbook, controller_name):
    ran = run_playbook(playbook, env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_PIPELINING": "1"})
    assert ran.returncode == 0, ran.stdout[-6000:] + ran.stderr[-3000:]
    report = json.loads(ran.stdout)
    results = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            if controller_name in task["hosts"]:
                results[task["task"]["name"]] = task["hosts"][controller_name]
    return results


@pytest.fixture(scope="module")
def succeeded(run_playbook, cluster):
    return task_results(run_playbook, SUCCESS_PLAYBOOK, cluster["slurmctld"][0])


@pytest.fixture(scope="module")
def failed(run_playbook, cluster):
    return task_results(run_playbook, FAILURE_PLAYBOOK, cluster["slurmctld"][0])


@pytest.fixture(scope="module")
def compute_names(computes):
    return {host.check_output("hostname -s"): host for host in computes}


def job_record(controller, job_id):
    line = controller.check_output(f"scontrol --oneliner show job {job_id}")
    return dict(re.findall(r"(\S+?)=(\S*)", line))


def wait_for(predicate, seconds):
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.2)


def assert_failure_fields(result):
    """A failed command result carries what is needed to act on it."""
    for key in ("msg", "cmd", "rc", "stdout", "stderr"):
        assert key in result, (key, result)


@pytest.mark.parametrize("mode", ["batch", "interactive", "allocation"])
def test_self_test_spans_the_compute_nodes_in_each_mode(mode, succeeded, controller, compute_names):
    result = succeeded[f"Self-test in {mode} mode"]
    assert result["mode"] == mode
    assert (result["state"], result["exit_code"], result["failed_ranks"]) == ("COMPLETED", 0, [])
    assert result["workers_missing"] == []
    assert sorted(worker["rank"] for worker in result["workers_connected"]) == list(range(1, NTASKS))
    hosts = [task["host"] for task in result["tasks"]]
    assert len(set(hosts)) == 2 and set(hosts) <= set(compute_names), hosts
    assert all(task["exit_code"] == 0 for task in result["tasks"])

    master = result["master"]
    assert master["host"] == result["tasks"][0]["host"]
    master_addresses = compute_names[master["host"]].check_output("hostname -I").split()
    assert master["ip"] in master_addresses
    for worker in result["workers_connected"]:
        assert worker["address"] in compute_names[worker["host"]].check_output("hostname -I").split()

    record = job_record(controller, result["job_id"])
    assert (record["JobState"], record["JobName"], record["NumTasks"]) == ("COMPLETED", f"mw-selftest-{mode}", "4")
    # This cluster has no accounting database: the module says so instead of guessing.
    assert result["accounting"] == [] and "accounting storage is disabled" in result["accounting_unavailable"], result


def test_the_users_master_gets_the_exact_sum_from_its_workers(succeeded):
    result = succeeded["User master sums the numbers its workers send"]
    assert result["state"] == "COMPLETED"
    expected = sum(rank * rank + 10 for rank in range(1, NTASKS))
    assert result["tasks"][0]["stdout_tail"] == [f"sum={expected}"]
    assert "workers_connected" not in result
    assert [task["exit_code"] for task in result["tasks"]] == [0] * NTASKS


def test_an_unprivileged_user_runs_the_job(succeeded, controller):
    result = succeeded["Self-test in batch mode as the unprivileged user"]
    assert (result["state"], result["user"], result["workers_missing"]) == ("COMPLETED", JOB_USER, [])
    assert job_record(controller, result["job_id"])["UserId"].startswith(f"{JOB_USER}(")


def test_without_wait_the_module_returns_a_job_that_then_runs(succeeded, controller):
    result = succeeded["Submit without waiting"]
    assert result["changed"] and isinstance(result["job_id"], int)
    assert result["state"] in {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "COMPLETED"}
    assert "tasks" not in result
    finished = wait_for(lambda: job_record(controller, result["job_id"])["JobState"] == "COMPLETED", 60)
    assert finished, job_record(controller, result["job_id"])


def test_check_mode_validates_and_submits_nothing(succeeded, controller):
    result = succeeded["Check mode validates and submits nothing"]
    assert result["changed"] and "job_id" not in result
    assert result["test_only"]["processors"] == NTASKS
    assert "--test-only" in result["cmd"]
    names = re.findall(r"JobName=(\S+)", controller.check_output("scontrol --oneliner show job"))
    assert "mw-selftest-batch" in names and "mw-check-only" not in names


def test_missing_slurm_commands_are_named(failed):
    result = failed["Slurm commands missing"]
    assert 'Failed to find required executable "sbatch"' in result["msg"]
    assert "job_id" not in result


def test_an_unknown_partition_is_refused_before_submission(failed):
    result = failed["Partition that does not exist"]
    assert_failure_fields(result)
    assert "Invalid partition name specified" in result["msg"] and result["rc"] != 0
    assert "--partition=no-such-partition" in result["cmd"] and "--test-only" in result["cmd"]


def test_more_tasks_than_the_cluster_has_is_refused_with_its_size(failed, controller):
    result = failed["More tasks than the cluster can ever give"]
    assert_failure_fields(result)
    total_cpus = controller.check_output("sinfo --noheader --format=%C").split("/")[3]
    assert "Requested node configuration is not available" in result["msg"]
    assert f"has {total_cpus} CPUs on 2 nodes" in result["msg"]


def test_ntasks_below_one_is_refused(failed):
    assert "ntasks must be at least 1" in failed["No task at all"]["msg"]


def test_failing_master_and_worker_are_named_with_their_output(failed, controller):
    result = failed["Master and one worker exit non-zero"]
    assert_failure_fields(result)
    assert result["failed_ranks"] == [0, 2]
    master, worker = result["tasks"][0], result["tasks"][2]
    assert (master["exit_code"], worker["exit_code"]) == (3, 5)
    assert master["stderr_tail"] == ["master-went-wrong"] and worker["stderr_tail"] == ["worker-went-wrong"]
    assert f"job {result['job_id']} failed" in result["msg"] and "rank 2 on" in result["msg"]
    assert job_record(controller, result["job_id"])["JobState"] == "FAILED"


def test_workers_that_cannot_reach_the_master_are_named(failed):
    result = failed["Workers on the other node cannot reach a master on loopback"]
    assert_failure_fields(result)
    assert result["master"]["ip"] == "127.0.0.1"
    master_host = result["tasks"][0]["host"]
    elsewhere = [task["rank"] for task in result["tasks"] if task["host"] != master_host]
    assert elsewhere and result["workers_missing"] == elsewhere
    assert [worker["rank"] for worker in result["workers_connected"]] == [
        task["rank"] for task in result["tasks"][1:] if task["host"] == master_host]
    assert "ranks %s never checked in" % ", ".join(map(str, elsewhere)) in result["msg"]


@pytest.mark.parametrize("task_name", ["Batch job outlives the wait and is cancelled",
                                       "Allocation outlives the wait and is cancelled"])
def test_a_job_past_its_wait_is_cancelled(task_name, failed, controller, computes):
    result = failed[task_name]
    assert_failure_fields(result)
    job_id = result["job_id"]
    assert result["timed_out"] is True and result["state"] == "CANCELLED"
    assert f"job {job_id} did not finish" in result["msg"] and f"last state {result['last_state']}" in result["msg"]
    assert job_record(controller, job_id)["JobState"] == "CANCELLED"
    assert controller.check_output(f"squeue --noheader --jobs={job_id} --states=PENDING,RUNNING") == ""
    gone = wait_for(lambda: all("sleep 300" not in host.check_output("ps -eo args=").splitlines()
                                for host in computes), 15)
    assert gone, "the job's programs still run on a compute node after the cancel"


def test_env_values_stay_off_every_command_line_and_out_of_every_result(run_playbook, cluster, all_hosts):
    """While jobs with a secret in env run in every mode, every node's command lines are sampled
    (full width); the value must reach each rank, and appear in no command line and no result."""
    secret = "mw-secret-%s" % uuid.uuid4().hex
    env = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_PIPELINING": "1", "MW_TEST_SECRET": secret,
           "MW_TEST_SECRET_SHA256": hashlib.sha256(secret.encode()).hexdigest()}
    ran = []
    playbook = threading.Thread(target=lambda: ran.append(run_playbook(SECRETS_PLAYBOOK, env=env)))
    playbook.start()
    command_lines = {host.backend.name: set() for host in all_hosts}
    while playbook.is_alive():
        for host in all_hosts:
            command_lines[host.backend.name].update(host.check_output("ps -eo args -ww").splitlines())
    playbook.join()
    [result] = ran
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert secret not in result.stdout + result.stderr

    report = json.loads(result.stdout)
    controller_name = cluster["slurmctld"][0]
    results = {task["task"]["name"]: task["hosts"][controller_name]
               for play in report["plays"] for task in play["tasks"] if controller_name in task["hosts"]}
    for name in SECRET_TASKS:
        job = results[name]
        assert job["state"] == "COMPLETED" and job["failed_ranks"] == [], (name, job)
        assert [task["stdout_tail"] for task in job["tasks"]] == [["has-it"]] * NTASKS, (name, job["tasks"])
        assert "MW_TEST_SECRET" in json.dumps(job["step_cmd"])
        assert secret not in json.dumps(job)

    # A rank's driver: its command line ends with the task config (the launcher's with "launch {").
    drivers = [name for name in cluster["slurmd"]
               if any("hpc.slurm.slurm_mw_driver" in line and ' task {"master_command"' in line
                      for line in command_lines[name])]
    assert sorted(drivers) == sorted(cluster["slurmd"]), "the sampling never saw a rank running on every node"
    leaks = {name: [line for line in lines if secret in line] for name, lines in command_lines.items()}
    assert leaks == {name: [] for name in command_lines}
