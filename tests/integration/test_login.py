"""Login node and one identity (molecule/login): users declared once in the inventory exist with
the same ids on every host, a declared user submits from a login node that runs no slurmctld or
slurmd, and the job runs on the compute nodes under that user's uid. Bad declarations are refused
before any host changes.

The tests share one converged cluster; the reruns leave it as they found it, except the last,
which adds accounting to it and reboots the controller.
"""
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import docker_host

pytestmark = pytest.mark.login

SLURM_IDS = (64030, 64030)
MUNGE_IDS = (64029, 64029)


def as_user(user, command):
    return f"runuser -u {user} -- {command}"


@pytest.fixture(scope="module")
def login(cluster):
    assert len(cluster["slurm_login"]) == 1, cluster["slurm_login"]
    return docker_host(cluster["slurm_login"][0])


@pytest.fixture(scope="module")
def declared_users(cluster, hostvars):
    users = hostvars(cluster["slurm_login"][0])["cluster_users_users"]
    assert users, "the scenario declares users"
    return users


@pytest.fixture(scope="module")
def alice(declared_users):
    return next(user for user in declared_users if user["name"] == "alice")


def test_every_declared_user_has_the_same_identity_on_every_host(all_hosts, declared_users):
    for user in declared_users:
        seen = {host.backend.name: host.run_expect([0], f"id {user['name']}").stdout.strip() for host in all_hosts}
        assert len(set(seen.values())) == 1, seen
        assert f"uid={user['uid']}({user['name']})" in next(iter(seen.values())), seen


def test_extra_groups_and_primary_groups_are_the_declared_ones(all_hosts):
    for host in all_hosts:
        assert host.run_expect([0], "id -g alice").stdout.strip() == "6001"
        assert "physics" in host.run_expect([0], "id -nG alice").stdout.split()
        assert host.run_expect([0], "id -gn bob").stdout.strip() == "physics"
        assert host.run_expect([0], "getent passwd bob").stdout.strip().endswith(":/bin/sh")


@pytest.mark.parametrize("account,ids", [("slurm", SLURM_IDS), ("munge", MUNGE_IDS)])
def test_slurm_and_munge_have_the_same_ids_on_every_host(all_hosts, account, ids):
    for host in all_hosts:
        uid = host.run_expect([0], f"id -u {account}").stdout.strip()
        gid = host.run_expect([0], f"getent group {account}").stdout.split(":")[2]
        assert (int(uid), int(gid)) == ids, (host.backend.name, uid, gid)


def test_the_login_node_runs_no_slurmctld_or_slurmd(login):
    for daemon in ("slurmctld", "slurmd"):
        assert login.run(f"pgrep -x {daemon}").rc == 1, f"{daemon} runs on the login node"
        assert login.run(f"dpkg -s {daemon}").rc != 0, f"{daemon} is installed on the login node"
    assert login.run("test -e /etc/slurm/slurm.conf").rc == (1 if login.run("dpkg -s sackd").rc == 0 else 0)


def test_a_declared_user_submits_from_the_login_node_and_the_job_runs_under_the_declared_uid(login, computes, alice):
    assert "idle" in login.run_expect([0], as_user("alice", "sinfo --noheader --format %T")).stdout
    login.run_expect([0], as_user("alice", "squeue"))

    ran = login.run_expect([0], as_user("alice", "srun --nodes=2 --ntasks=2 --chdir=/tmp sh -c 'echo $(hostname) $(id -u)'"))
    lines = sorted(ran.stdout.split("\n")[:-1])
    assert [line.split()[1] for line in lines] == [str(alice["uid"])] * 2, ran.stdout
    assert sorted(line.split()[0] for line in lines) == sorted(c.check_output("hostname") for c in computes)

    job = login.run_expect([0], as_user(
        "alice", "sbatch --parsable --wait --chdir=/tmp --output=/dev/null "
        "--wrap 'id -u > /tmp/login-test-$SLURM_JOB_ID'")).stdout.strip()
    node = login.run_expect([0], f"squeue --noheader --states=all --jobs {job} --format %N").stdout.strip()
    ran_on = next(c for c in computes if c.check_output("hostname") == node)
    assert ran_on.file(f"/tmp/login-test-{job}").content_string.strip() == str(alice["uid"])


def test_a_declared_user_cancels_a_job_from_the_login_node(login):
    job = login.run_expect([0], as_user(
        "alice", "sbatch --parsable --chdir=/tmp --output=/dev/null --wrap 'sleep 300'")).stdout.strip()
    login.run_expect([0], as_user("alice", f"scancel {job}"))
    state = login.run_expect([0], f"squeue --noheader --states=all --jobs {job} --format %T").stdout.strip()
    assert state in ("CANCELLED", "COMPLETING", ""), state


def test_authorized_keys_hold_exactly_the_declared_keys_with_private_modes(all_hosts, alice):
    for host in all_hosts:
        keys = host.file("/home/alice/.ssh/authorized_keys")
        assert keys.content_string == "\n".join(alice["authorized_keys"]) + "\n"
        assert (keys.user, keys.mode) == ("alice", 0o600)
        assert (host.file("/home/alice/.ssh").user, host.file("/home/alice/.ssh").mode) == ("alice", 0o700)


def test_the_password_hash_is_set_but_never_in_verbose_or_diff_output(login, alice, run_playbook):
    assert login.run_expect([0], "getent shadow alice").stdout.split(":")[1] == alice["password"]
    rerun = run_playbook("site.yml", "-vvv", "--diff")
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    salt_and_hash = alice["password"].split("$")[-1]
    assert salt_and_hash not in rerun.stdout + rerun.stderr


def test_check_mode_on_the_converged_cluster_changes_nothing_and_shows_no_hash(run_playbook, alice):
    run = run_playbook("site.yml", "--check", "--diff")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert set(_recap_changes(run.stdout).values()) == {0}, output[-3000:]
    assert alice["password"].split("$")[-1] not in output


def _recap_changes(output):
    return {host: int(changed) for host, changed in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.M)}


@pytest.mark.parametrize("users,groups,message", [
    ([{"name": "carol", "uid": 6101}, {"name": "dave", "uid": 6101}], None,
     "cluster_users_users gives uid 6101 to more than one user (carol, dave)"),
    ([{"name": "carol", "uid": 6101}, {"name": "carol", "uid": 6102}], None,
     "cluster_users_users declares the user name 'carol' more than once"),
    ([{"name": "carol", "uid": 6101}], [{"name": "chem", "gid": 6200}, {"name": "bio", "gid": 6200}],
     "cluster_users_groups gives gid 6200 to more than one group (chem, bio)"),
    ([{"name": "carol", "uid": 65534}], None,
     "cluster_users_users: uid 65534 of user 'carol' belongs to the user 'nobody' on"),
    # localuser exists on the compute nodes only (prepare.yml).
    ([{"name": "carol", "uid": 7001}], None,
     "cluster_users_users: uid 7001 of user 'carol' belongs to the user 'localuser' on "),
], ids=["uid-twice", "name-twice", "gid-twice", "uid-of-nobody", "uid-of-a-local-user"])
def test_bad_declarations_are_refused_before_any_host_changes(all_hosts, run_playbook, users, groups, message):
    extra = {"cluster_users_users": users}
    if groups is not None:
        extra["cluster_users_groups"] = groups
    run = run_playbook("site.yml", extra_vars=extra)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert message in output, output[-3000:]
    changes = _recap_changes(run.stdout)
    assert changes and set(changes.values()) == {0}, changes
    for host in all_hosts:
        assert host.run("getent passwd carol").rc == 2, host.backend.name


def test_a_munge_account_with_other_ids_is_refused_with_what_to_do_and_left_alone(all_hosts, run_playbook):
    # As on a host where the package made munge before this collection managed it.
    run = run_playbook("site.yml", extra_vars={"cluster_users_munge_uid": 64028})
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert "cluster_users_munge_uid/_gid: the user 'munge' exists on" in output, output[-3000:]
    assert "with uid 64029, not 64028" in output and "does not renumber live accounts" in output
    assert set(_recap_changes(run.stdout).values()) == {0}
    for host in all_hosts:
        assert host.run_expect([0], "id -u munge").stdout.strip() == str(MUNGE_IDS[0])


def test_client_commands_on_the_login_node_read_the_controllers_configuration(login):
    out = login.run_expect([0], as_user("alice", "scontrol show config")).stdout
    assert re.search(r"^ClusterName\s+=\s+login$", out, re.M), out[:500]


def _login_config_path(login):
    """Where the login node's client commands read slurm.conf: sackd's copy (24.11) or /etc/slurm (22.05)."""
    return "/run/slurm/conf" if login.run("dpkg -s sackd").rc == 0 else "/etc/slurm"


def test_the_login_nodes_configuration_is_the_controllers(login, controller):
    where = _login_config_path(login)
    # sackd fetches no cgroup.conf: only slurmd reads it.
    for name in ("slurm.conf",) if where == "/run/slurm/conf" else ("slurm.conf", "cgroup.conf"):
        assert login.file(f"{where}/{name}").content_string == controller.file(f"/etc/slurm/{name}").content_string, name


def test_sackd_takes_a_reconfigure_without_a_run(login, controller):
    if _login_config_path(login) != "/run/slurm/conf":
        pytest.skip("Slurm 22.05 has no sackd: the login node's copies change on the next run")
    marker = "# test_login: reconfigure reaches sackd"
    try:
        controller.run_expect([0], f"echo '{marker}' >> /etc/slurm/slurm.conf && scontrol reconfigure")
        for _ in range(30):
            if marker in login.file("/run/slurm/conf/slurm.conf").content_string:
                break
            time.sleep(1)
        else:
            pytest.fail("30 s after scontrol reconfigure, sackd's slurm.conf on the login node is still the old one")
    finally:
        controller.run_expect([0], f"sed -i '/^{marker}$/d' /etc/slurm/slurm.conf && scontrol reconfigure")
        for _ in range(30):
            if marker not in login.file("/run/slurm/conf/slurm.conf").content_string:
                break
            time.sleep(1)


def test_a_partition_added_on_a_run_reaches_the_login_nodes_commands_and_goes_again(login, run_playbook):
    # 24.11: sackd hears the controller's reconfigure; 22.05: the run renews the login node's copies.
    partitions = [{"name": "main", "default": True, "default_time": "01:00:00", "max_time": "7-00:00:00"},
                  {"name": "extra", "default": False}]
    listed = "sinfo --noheader --format %R | sort -u"
    try:
        run = run_playbook("site.yml", extra_vars={"slurm_partitions": partitions})
        assert run.returncode == 0, run.stdout[-3000:]
        for _ in range(30):
            if login.run(as_user("alice", listed)).stdout.split() == ["extra", "main"]:
                break
            time.sleep(1)
        assert login.run_expect([0], as_user("alice", listed)).stdout.split() == ["extra", "main"]
        job = login.run_expect([0], as_user("alice", "srun --partition extra --chdir /tmp hostname"))
        assert job.stdout.strip(), job.stderr
    finally:
        back = run_playbook("site.yml")
    assert back.returncode == 0, back.stdout[-3000:]
    for _ in range(30):
        if login.run(as_user("alice", listed)).stdout.split() == ["main"]:
            break
        time.sleep(1)
    assert login.run_expect([0], as_user("alice", listed)).stdout.split() == ["main"]



def _recorded(controller, job_id, expected):
    for _ in range(60):
        record = controller.run(f"sacct --noheader --parsable2 --allocations --jobs {job_id} --format User,State").stdout.strip()
        if record == expected:
            return
        time.sleep(1)
    pytest.fail(f"job {job_id}: sacct has {record!r}, not {expected!r}")


def _submit_and_wait(login, user):
    job = login.run_expect([0], as_user(user, "sbatch --parsable --wait --chdir /tmp --output /dev/null --wrap hostname"))
    return job.stdout.strip().split(";")[0]


# Last in this file: it leaves the cluster with accounting and reboots the controller.
def test_accounting_added_to_the_running_cluster_records_jobs_and_survives_a_reboot_in_order(
        cluster, controller, login, inventory_file, run_playbook, tmp_path):
    # The site that follows the tutorials adds accounting to the cluster it has: the controller
    # becomes the database host too. The scenario's group_vars sit beside its inventory.
    inventory = yaml.safe_load(Path(inventory_file).read_text())
    inventory["slurmdbd"] = {"hosts": {cluster["slurmctld"][0]: None}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "group_vars").symlink_to(Path(inventory_file).parent / "group_vars")
    run = run_playbook("site.yml", inventory=tmp_path / "inventory.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    cluster_name = controller.check_output("scontrol show config | sed -n 's/^ClusterName *= *//p'")
    assert controller.check_output("sacctmgr --noheader --parsable2 show cluster format=Cluster") == cluster_name
    _recorded(controller, _submit_and_wait(login, "alice"), "alice|COMPLETED")

    subprocess.run(["docker", "restart", cluster["slurmctld"][0]], check=True, capture_output=True, timeout=180)
    for _ in range(120):
        if "is UP" in login.run(as_user("alice", "scontrol ping")).stdout:
            break
        time.sleep(1)
    else:
        pytest.fail("slurmctld did not answer the login node within 120 s of the controller's reboot")

    def moment(unit, event):  # microseconds since boot; 0 if it never happened
        return int(controller.check_output(f"systemctl show --value --property {event}TimestampMonotonic {unit}"))
    started = {unit: moment(unit, "InactiveExit") for unit in ("mariadb", "slurmdbd", "slurmctld")}
    ready = {unit: moment(unit, "ActiveEnter") for unit in ("mariadb", "slurmdbd")}
    assert 0 < ready["mariadb"] <= started["slurmdbd"], (started, ready)
    assert 0 < ready["slurmdbd"] <= started["slurmctld"], (started, ready)
    _recorded(controller, _submit_and_wait(login, "bob"), "bob|COMPLETED")
