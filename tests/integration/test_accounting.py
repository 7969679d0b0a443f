"""Accounting on a real MariaDB: slurmdbd on a host of its own, accounts and QOS from the
inventory (molecule/accounting), jobs recorded by sacct, limits that Slurm enforces, and
slurmdbd and MariaDB restarted under a live cluster.

The tests share one converged cluster and run top to bottom; each leaves it as it found it.
Jobs run as the declared user hpcuser (account physics: MaxJobs=1, MaxWall=30 min; QOS short:
MaxWall=10 min) or as outsider, who is in no account.
"""
import json
import re
import time

import pytest

pytestmark = pytest.mark.accounting

JOB_USER = "hpcuser"
OUTSIDER = "outsider"
SITE_PASSWORD_FILE = "/var/lib/hpc-slurm/slurmdbd-storage-password"


def as_user(command, user=JOB_USER):
    return f"runuser -u {user} -- {command}"


def wait_for(what, probe, timeout=120, interval=1):
    """Poll probe() until it returns something true; fail naming what was awaited and the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"waited {timeout} s for {what}; last seen: {last!r}")


@pytest.fixture(scope="module")
def dbd(cluster):
    from conftest import docker_host
    assert len(cluster["slurmdbd"]) == 1, cluster["slurmdbd"]
    return docker_host(cluster["slurmdbd"][0])


def submit(controller, wrap, *options, user=JOB_USER):
    """sbatch as user (5 minutes unless options say otherwise: the partition's default hour is over
    the account's MaxWall); returns the job id."""
    if not any(option.startswith("--time") for option in options):
        options += ("--time=00:05:00",)
    out = controller.run_expect([0], as_user(
        "sbatch --parsable --chdir=/tmp --output=/dev/null " + " ".join(options) + f" --wrap '{wrap}'", user))
    return out.stdout.strip().split(";")[0]


def squeue_state(controller, job_id):
    """'STATE REASON' of a job slurmctld still knows, or '' once it has left the queue."""
    return controller.run(f"squeue --noheader --jobs {job_id} --format '%T %r'").stdout.strip()


def sacct_record(controller, job_id):
    """The job allocation's record in the database: dict of the fields, or None if none yet."""
    fields = ["JobID", "User", "Account", "State", "ExitCode", "Elapsed", "QOS"]
    out = controller.run(f"sacct --noheader --parsable2 --allocations --jobs {job_id} --format {','.join(fields)}")
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    return dict(zip(fields, lines[0].split("|"))) if lines else None


def recorded_as(controller, job_id, **expected):
    """Wait until the job's record holds the expected fields (Slurm 22.05 records a failed job's
    exit code a moment after its state); fail with the last record seen."""
    def matches():
        record = sacct_record(controller, job_id)
        return record if record and all(record[key] == value for key, value in expected.items()) else None
    try:
        return wait_for(f"job {job_id} recorded with {expected}", matches, timeout=180)
    except pytest.fail.Exception:
        pytest.fail(f"job {job_id}: sacct has {sacct_record(controller, job_id)}, not {expected}")


def main_pid(host, unit):
    return host.run_expect([0], f"systemctl show --property MainPID --value {unit}").stdout.strip()


def cancel_all(controller):
    controller.run(f"scancel --user {JOB_USER}")
    wait_for("the test user's jobs to leave the queue",
             lambda: controller.run(f"squeue --noheader --user {JOB_USER}").stdout.strip() == "")


def test_the_accounting_roles_run_alone_with_only_their_documented_variables(run_playbook):
    result = run_playbook("tests/integration/playbooks/accounting_roles_alone.yml")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for role in ("hpc.slurm.slurmdbd", "hpc.slurm.slurm_accounting"):
        assert f"TASK [{role} : " in output, role
    assert set(re.findall(r"changed=(\d+)", result.stdout)) == {"0"}, output[-3000:]


def test_mariadb_listens_on_no_network_port_and_root_needs_the_socket(dbd):
    listening = dbd.run_expect([0], "ss --listening --tcp --numeric --processes --no-header").stdout
    assert "mariadbd" not in listening and "mysqld" not in listening, listening
    assert dbd.run_expect([0], "mariadb --batch --skip-column-names -e 'select 1'").stdout.strip() == "1"
    # As another system user, root's socket login is refused: root logs in through the socket only.
    refused = dbd.run(as_user("mariadb --user=root --batch -e 'select 1'"))
    assert refused.rc != 0 and "Access denied" in refused.stderr, refused.stderr
    users = dbd.run_expect([0], "mariadb --batch --skip-column-names -e "
                                "\"select concat(user, '@', host) from mysql.user\"").stdout.split()
    assert "" not in [u.split("@")[0] for u in users], users
    assert [u for u in users if u.startswith("root@")] == ["root@localhost"], users
    assert "slurm@localhost" in users, users
    databases = dbd.run_expect([0], "mariadb --batch --skip-column-names -e 'show databases'").stdout.split()
    assert "test" not in databases and "slurm_acct_db" in databases, databases
    grants = dbd.run_expect([0], "mariadb --batch --skip-column-names -e 'show grants for slurm@localhost'").stdout
    assert "ON `slurm_acct_db`.*" in grants and "ON *.*" in grants and "ALL PRIVILEGES ON *.*" not in grants, grants


def test_slurmdbd_conf_is_private_and_holds_the_kept_password(dbd):
    conf = dbd.file("/etc/slurm/slurmdbd.conf")
    assert (conf.user, conf.group, conf.mode) == ("slurm", "slurm", 0o600)
    kept = dbd.file(SITE_PASSWORD_FILE)
    assert (kept.user, kept.mode) == ("root", 0o600)
    password = kept.content_string.strip()
    assert len(password) >= 16
    assert f"StoragePass={password}\n" in dbd.run_expect([0], "cat /etc/slurm/slurmdbd.conf").stdout
    # The password works for slurmdbd's user and nobody else needs it.
    dbd.run_expect([0], f"mariadb --user=slurm --password={password} --batch -e 'select 1' slurm_acct_db")


def test_controller_records_jobs_through_slurmdbd_and_enforces_limits(controller, dbd):
    config = controller.run_expect([0], "scontrol show config").stdout
    settings = dict(re.findall(r"^(\S+)\s+=\s+(.*?)\s*$", config, re.MULTILINE))
    assert settings["AccountingStorageType"] == "accounting_storage/slurmdbd"
    assert settings["AccountingStorageHost"] == dbd.check_output("hostname")
    assert settings["JobAcctGatherType"] == "jobacct_gather/linux"  # containers here: proctrack/linuxproc
    assert set(settings["AccountingStorageEnforce"].split(",")) >= {"associations", "limits", "qos"}
    clusters = controller.run_expect([0], "sacctmgr --noheader --parsable2 show cluster format=Cluster").stdout.split()
    assert clusters == ["acct"]


def test_declared_accounts_users_and_qos_are_in_the_database(controller):
    assoc = controller.run_expect([0], "sacctmgr --noheader --parsable2 show association where account=physics "
                                       "format=Account,User,MaxJobs,MaxSubmit,MaxWall,GrpTRES,QOS").stdout.splitlines()
    rows = {line.split("|")[1]: line.split("|") for line in assoc}
    assert set(rows) == {"", JOB_USER}, rows
    account = rows[""]
    assert account[2:6] == ["1", "10", "00:30:00", "cpu=64"], account
    assert set(account[6].split(",")) == {"normal", "short"}, account
    qos = controller.run_expect([0], "sacctmgr --noheader --parsable2 show qos where name=short "
                                     "format=Name,MaxWall,MaxJobsPU").stdout.strip()
    assert qos == "short|00:10:00|4", qos


def test_a_finished_job_is_in_sacct_with_its_user_account_state_and_exit_code(controller):
    ok = submit(controller, "hostname")
    failed = submit(controller, "exit 3")
    recorded_as(controller, ok, User=JOB_USER, Account="physics", State="COMPLETED", ExitCode="0:0")
    recorded_as(controller, failed, User=JOB_USER, Account="physics", State="FAILED", ExitCode="3:0")


def test_a_user_with_no_association_is_refused(controller):
    refused = controller.run(as_user("sbatch --wrap true", OUTSIDER))
    assert refused.rc != 0, refused.stdout
    assert "Invalid account" in refused.stderr, refused.stderr


def test_a_job_over_maxjobs_waits_with_slurms_reason_and_starts_when_the_first_ends(controller):
    first = submit(controller, "sleep 300")
    wait_for("the first job to run", lambda: squeue_state(controller, first).startswith("RUNNING"))
    second = submit(controller, "hostname")
    held = wait_for("the second job to be held", lambda: squeue_state(controller, second) or None)
    assert held == "PENDING AssocMaxJobsLimit", held
    time.sleep(3)  # a scheduling pass or two: still held while the first runs
    assert squeue_state(controller, second) == "PENDING AssocMaxJobsLimit"
    controller.run_expect([0], f"scancel {first}")
    recorded_as(controller, second, State="COMPLETED", ExitCode="0:0")


def test_jobs_over_maxwall_are_held_with_slurms_reason(controller):
    over_account = submit(controller, "hostname", "--time=01:00:00")
    over_qos = submit(controller, "hostname", "--time=00:20:00", "--qos=short")
    try:
        assert wait_for("the job over the account's MaxWall to be held",
                        lambda: squeue_state(controller, over_account) or None) == "PENDING AssocMaxWallDurationPerJobLimit"
        assert wait_for("the job over the QOS's MaxWall to be held",
                        lambda: squeue_state(controller, over_qos) or None) == "PENDING QOSMaxWallDurationPerJobLimit"
    finally:
        cancel_all(controller)


def test_a_limit_changed_in_the_inventory_applies_on_a_rerun_without_restarting_slurmctld(
        controller, run_playbook, hostvars, cluster):
    accounts = hostvars(cluster["slurmctld"][0])["slurm_accounting_accounts"]
    two_jobs = json.loads(json.dumps(accounts))
    two_jobs[0]["limits"]["MaxJobs"] = 2
    before = main_pid(controller, "slurmctld")
    run = run_playbook("site.yml", extra_vars={"slurm_accounting_accounts": two_jobs})
    assert run.returncode == 0, run.stdout[-3000:]
    assert main_pid(controller, "slurmctld") == before
    try:
        jobs = [submit(controller, "sleep 300") for _ in range(3)]
        wait_for("two jobs to run", lambda: [squeue_state(controller, j) for j in jobs[:2]]
                 == ["RUNNING None", "RUNNING None"])
        assert wait_for("the third to be held", lambda: squeue_state(controller, jobs[2]) or None) \
            == "PENDING AssocMaxJobsLimit"
    finally:
        cancel_all(controller)
        back = run_playbook("site.yml")
        assert back.returncode == 0, back.stdout[-3000:]
    limits = controller.run_expect([0], "sacctmgr --noheader --parsable2 show association where account=physics "
                                        "user= format=MaxJobs").stdout.strip()
    assert limits == "1"
    assert main_pid(controller, "slurmctld") == before


def test_check_mode_shows_a_limit_change_and_makes_none(controller, run_playbook, hostvars, cluster):
    accounts = json.loads(json.dumps(hostvars(cluster["slurmctld"][0])["slurm_accounting_accounts"]))
    accounts[0]["limits"]["MaxJobs"] = 3
    run = run_playbook("site.yml", "--check", "--diff", extra_vars={"slurm_accounting_accounts": accounts})
    assert run.returncode == 0, run.stdout[-3000:]
    shown = run.stdout.split("TASK [hpc.slurm.slurm_accounting : Make the accounting database hold")[1].split("TASK [")[0]
    assert "changed: [" in shown and "MaxJobs" in shown, shown
    limits = controller.run_expect([0], "sacctmgr --noheader --parsable2 show association where account=physics "
                                        "user= format=MaxJobs").stdout.strip()
    assert limits == "1"


def test_jobs_run_while_slurmdbd_is_down_are_recorded_when_it_is_back(controller, dbd):
    # Jobs that ran (completed or failed): their records are what must survive.
    def ran():
        records = controller.run_expect([0], "sacct --noheader --parsable2 --allocations --starttime 2000-01-01 "
                                             "--format JobID,State").stdout.splitlines()
        return {job for job, state in (line.split("|") for line in records if line) if state in ("COMPLETED", "FAILED")}

    earlier = ran()
    assert earlier, "the earlier tests left jobs in the database"
    dbd.run_expect([0], "systemctl stop slurmdbd")
    try:
        while_down = submit(controller, "exit 4")
        wait_for("the job to leave the queue", lambda: squeue_state(controller, while_down) == "")
    finally:
        dbd.run_expect([0], "systemctl start slurmdbd")
    recorded_as(controller, while_down, User=JOB_USER, State="FAILED", ExitCode="4:0")

    dbd.run_expect([0], "systemctl restart mariadb")
    after_restart = submit(controller, "hostname")
    recorded_as(controller, after_restart, State="COMPLETED")
    # Right after MariaDB restarts, Slurm 22.05 can store a job's end before its start: for about a
    # second its record has no eligible time, and sacct's time-window listing leaves it out while
    # `sacct -j` shows it. So wait for the listing to settle; a record really lost never comes back.
    expected = earlier | {while_down, after_restart}
    deadline = time.monotonic() + 60
    while (missing := expected - ran()) and time.monotonic() < deadline:
        time.sleep(1)
    assert not missing, f"records lost after slurmdbd and MariaDB restarted: {sorted(missing, key=int)}"


def test_mw_job_reports_each_jobs_accounting_as_sacct_records_it(run_playbook, controller, cluster):
    ran = run_playbook("tests/integration/playbooks/mw_job_accounting.yml",
                       env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"})
    assert ran.returncode == 0, ran.stdout[-6000:] + ran.stderr[-3000:]
    tasks = {task["task"]["name"]: task["hosts"][cluster["slurmctld"][0]]
             for play in json.loads(ran.stdout)["plays"] for task in play["tasks"]}
    for name, state, exit_code in (("Self-test in batch mode", "COMPLETED", 0), ("A worker that exits 5", "FAILED", 5)):
        result = tasks[name]
        assert "accounting_unavailable" not in result, result
        job = result["accounting"][0]
        assert (job["job_id"], job["step"], job["user"], job["account"]) == (str(result["job_id"]), None, "root", "root"), job
        recorded = sacct_record(controller, result["job_id"])
        # Elapsed is left out: Slurm 22.05 rewrites a short job's times in the database after it ends.
        assert (job["state"], f"{job['exit_code']}:{job['exit_signal']}") == (recorded["State"], recorded["ExitCode"]), \
            (job, recorded)
        assert job["state"] == state, job
        assert job["elapsed_seconds"] == sum(int(part) * 60 ** i for i, part in enumerate(reversed(job["elapsed"].split(":"))))
        if exit_code:
            assert exit_code in [step["exit_code"] for step in result["accounting"]], result["accounting"]


def test_the_database_password_is_in_no_output(dbd, run_playbook):
    password = dbd.file(SITE_PASSWORD_FILE).content_string.strip()
    run = run_playbook("site.yml", "-vvv", "--diff")
    assert run.returncode == 0, run.stdout[-3000:]
    assert password not in run.stdout and password not in run.stderr
    # And with the password given by the inventory: the user is changed to it, still unseen.
    chosen = "Chosen-in-the-inventory-" + password[:8]
    run = run_playbook("site.yml", "-vvv", "--diff", extra_vars={"slurmdbd_storage_password": chosen})
    try:
        assert run.returncode == 0, run.stdout[-3000:]
        assert chosen not in run.stdout and chosen not in run.stderr
        assert f"StoragePass={chosen}\n" in dbd.run_expect([0], "cat /etc/slurm/slurmdbd.conf").stdout
    finally:
        back = run_playbook("site.yml")
        assert back.returncode == 0, back.stdout[-3000:]
    assert f"StoragePass={password}\n" in dbd.run_expect([0], "cat /etc/slurm/slurmdbd.conf").stdout
