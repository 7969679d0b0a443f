"""Faults and changes on a live cluster: reruns and config changes while jobs run, a config
slurmctld refuses, nodes added, removed and restarted, a controller restart, a node with a
foreign munge key, munge key rotation, check mode, and the files' owners and modes afterwards.

The tests share one converged cluster (molecule/faults) and run top to bottom, each leaving
the cluster healthy for the next. Jobs run as a normal user and hold until the test creates
a release file on their node, so no test guesses how long a run takes.
"""
import base64
import hashlib
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import testinfra
import yaml

pytestmark = pytest.mark.faults

JOB_USER = "hpcuser"
# A held job gives up (exit 1) after this many seconds, so a broken test leaves no job behind.
HOLD_LIMIT = 900
# Settings a test changed for good (as an admin would in the inventory); every later rerun passes them.
SITE_VARS = {}

# Searches the files under a few roots for any of the byte strings given base64-encoded as arguments.
FIND_BYTES = """
import base64, os, sys
needles = [base64.b64decode(arg) for arg in sys.argv[1:]]
for top in ("/etc", "/tmp", "/var", "/root", "/home", "/run"):
    for directory, _, files in os.walk(top):
        for name in files:
            path = os.path.join(directory, name)
            try:
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            if any(needle in data for needle in needles):
                print(path)
"""
HEALTH_PLAYBOOK = "tests/integration/playbooks/health_check.yml"
MUNGE_PLAYBOOK = "tests/integration/playbooks/munge_only.yml"
WORLD_WRITABLE = "find / -xdev -perm -0002 ! -type l ! -type s ! -path '/tmp/*' ! -path '/var/tmp/*' ! -path '/dev/*' | sort"


def docker_host(name):
    return testinfra.get_host(f"docker://{name}")


def as_user(command):
    return f"runuser -u {JOB_USER} -- {command}"


def wait_until(what, probe, timeout=180, interval=2):
    """Call probe() -> (done, state) until done; fail naming what was awaited and the last state."""
    start = time.monotonic()
    while True:
        done, state = probe()
        if done:
            return state
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what}: not reached within {timeout} s; last state: {state!r}")
        time.sleep(interval)


def recap(stdout):
    """{host: (changed, failed)} from the PLAY RECAP."""
    return {host: (int(changed), int(failed)) for host, changed, failed in re.findall(
        r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", stdout, re.MULTILINE)}


def flat(text):
    return " ".join(text.split())


def failure(output):
    """The lines of a playbook's output that say what failed, and its recap."""
    lines = output.splitlines()
    failed = [line[:2000] for line in lines if re.match(r"(fatal|failed|\[ERROR\]|ERROR!)", line)]
    return "\n".join(failed + lines[-8:])


def rerun(run_playbook, *args, extra=None, inventory=None):
    # The docker connection reads pipelining from [connection], not ansible.cfg's [ssh_connection].
    result = run_playbook("site.yml", *args, extra_vars={**SITE_VARS, **(extra or {})} or None, inventory=inventory,
                          env={"ANSIBLE_PIPELINING": "1"})
    return result, result.stdout + result.stderr


def job_fields(controller, job_id):
    shown = controller.run(f"scontrol --oneliner show job {job_id}")
    return dict(re.findall(r"(\w+)=(\S*)", shown.stdout)) if shown.rc == 0 else {"error": shown.stderr.strip()}


def new_tag(name):
    """A release-file name no earlier run of these tests used."""
    return f"{name}-{secrets.token_hex(4)}"


def submit_held_job(controller, tag, node=None, exclusive=False):
    """Submit a job that runs until /tmp/<tag> exists on its node; returns the job id."""
    hold = f"for i in $(seq {HOLD_LIMIT}); do [ -e /tmp/{tag} ] && exit 0; sleep 1; done; exit 1"
    placement = (f" --nodelist={node}" if node else "") + (" --exclusive" if exclusive else " --mem=16")
    return controller.check_output(as_user(
        f"sbatch --parsable --ntasks=1{placement} --chdir=/tmp --output=/dev/null --job-name={tag} --wrap='{hold}'"))


def wait_job_state(controller, job_id, states, timeout=180):
    def probe():
        fields = job_fields(controller, job_id)
        return fields.get("JobState") in states, fields
    return wait_until(f"job {job_id} in {'/'.join(states)}", probe, timeout=timeout)


def release_and_expect_success(controller, hosts, tag, job_ids):
    for host in hosts:
        host.check_output(f"touch /tmp/{tag}")
    for job_id in job_ids:
        fields = wait_job_state(controller, job_id, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"}, 240)
        assert (fields["JobState"], fields["ExitCode"]) == ("COMPLETED", "0:0"), fields


def node_states(controller):
    return dict(line.split("|") for line in controller.check_output("sinfo --noheader --Node --format='%N|%T'").splitlines())


def wait_nodes_idle(controller, names, timeout=180):
    def probe():
        states = node_states(controller)
        return states == {name: "idle" for name in names}, states
    return wait_until(f"nodes {', '.join(names)} idle", probe, timeout=timeout)


def daemon_pids(hosts):
    return {h.backend.hostname: h.check_output("ps -o comm=,pid= -C slurmctld,slurmd,munged | sort") for h in hosts}


def conf_digests(hosts):
    """sha256 of the slurm.conf each host's Slurm commands read: the controller's own file, the
    copy slurmd fetched elsewhere (configless)."""
    return {h.backend.hostname: h.check_output(
        "sha256sum $(ls /etc/slurm/slurm.conf 2>/dev/null || echo /run/slurm/conf/slurm.conf)").split()[0] for h in hosts}


def controller_conf(controller):
    return controller.check_output("sha256sum /etc/slurm/slurm.conf /etc/slurm/cgroup.conf")


def wait_conf_everywhere(hosts, text):
    """Every host's Slurm sees `text` in slurm.conf (slurmd fetches it after a reconfigure)."""
    def probe():
        found = {h.backend.hostname: text in h.check_output(
            "cat $(ls /etc/slurm/slurm.conf 2>/dev/null || echo /run/slurm/conf/slurm.conf)") for h in hosts}
        return all(found.values()), found
    return wait_until(f"{text} in every host's slurm.conf", probe, timeout=60)


def changed_tasks(output):
    """Task names that reported changed, with the hosts."""
    found = []
    for section in re.split(r"^(?:TASK|RUNNING HANDLER) \[", output, flags=re.M)[1:]:
        name = section.split("]", 1)[0]
        found += [(name, host) for host in re.findall(r"^changed: \[([^\]]+)\]", section, re.M)]
    return found


def key_forms(key):
    """What a key (bytes) could look like in text output: its base64, its text if it is text, prefixes."""
    encoded = base64.b64encode(key).decode()
    forms = [encoded, encoded[:32]]
    try:
        text = key.decode()
    except UnicodeDecodeError:
        return forms
    return forms + [text, text[:24]] if text.isprintable() else forms


@pytest.fixture(scope="module")
def molecule_inventory(inventory_file):
    return yaml.safe_load(Path(inventory_file).read_text())


@pytest.fixture(scope="module")
def spare(molecule_inventory):
    """The bare host outside the cluster (group spare)."""
    names = list(molecule_inventory["spare"]["hosts"])
    assert len(names) == 1, names
    return docker_host(names[0])


@pytest.fixture(scope="module")
def controller_name(cluster):
    return cluster["slurmctld"][0]


@pytest.fixture(scope="module")
def compute_names(cluster):
    return list(cluster["slurmd"])


@pytest.fixture(scope="module")
def cluster_hosts(controller, computes):
    return [controller, *computes]


@pytest.fixture(scope="module")
def inventory_with_spare(inventory_file, molecule_inventory, spare, tmp_path_factory):
    """The molecule inventory with the spare host moved into slurmd (group_vars copied along)."""
    source = Path(inventory_file)
    inventory = yaml.safe_load(yaml.safe_dump(molecule_inventory))
    name = spare.backend.hostname
    inventory["slurmd"]["hosts"][name] = inventory["spare"]["hosts"].pop(name)
    directory = tmp_path_factory.mktemp("inventory")
    for extra in ("group_vars", "host_vars"):
        if (source.parent / extra).exists():
            shutil.copytree(source.parent / extra, directory / extra)
    path = directory / "with_spare.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


@pytest.fixture(scope="module")
def fresh_spare_world_writable(spare):
    """World-writable paths of the spare host before any run touched it."""
    assert spare.run("dpkg-query -W munge").rc != 0, "the spare host is not fresh"
    return set(spare.check_output(WORLD_WRITABLE).splitlines())


@pytest.fixture(autouse=True)
def no_jobs_left_behind(controller):
    """A failed test must not leave held jobs that keep the next test's nodes busy."""
    yield

    def queue_empty():
        listed = controller.run("squeue --noheader")
        return listed.rc == 0 and not listed.stdout.strip(), listed.stdout + listed.stderr
    controller.run(f"scancel --user={JOB_USER}")
    wait_until("an empty queue after the test", queue_empty, timeout=120)


def test_check_mode_on_a_fresh_host_changes_nothing(
    run_playbook, inventory_with_spare, spare, cluster_hosts, fresh_spare_world_writable
):
    digests = conf_digests(cluster_hosts)
    result, output = rerun(run_playbook, "--check", "--diff", inventory=inventory_with_spare)
    assert result.returncode == 0, failure(output)
    name = spare.backend.hostname
    assert f"Slurm is not installed yet on {name}, so `slurmd -C` cannot report the hardware there" in flat(output)
    assert "Check mode changed nothing, so the cluster's health is not checked" in output
    changes = recap(result.stdout)
    assert all(changes[h.backend.hostname] == (0, 0) for h in cluster_hosts), changes
    assert changes[name][1] == 0, changes
    assert spare.run("dpkg-query -W munge slurmd").rc != 0
    assert not spare.file("/etc/munge").exists and not spare.file("/etc/slurm").exists
    assert set(spare.check_output(WORLD_WRITABLE).splitlines()) == fresh_spare_world_writable
    assert conf_digests(cluster_hosts) == digests
    assert not spare.file("/etc/default/slurmd").exists


def test_restarted_compute_node_comes_back_idle_on_its_own(controller, computes, compute_names, job_user):
    node, name = computes[-1], compute_names[-1]
    restarted_at = time.time()
    subprocess.run(["docker", "restart", name], check=True, capture_output=True, timeout=180)

    def slurmd_restarted():
        elapsed = node.run("ps -o etimes= -C slurmd")
        started = time.time() - int(elapsed.stdout.split()[0]) if elapsed.rc == 0 and elapsed.stdout.strip() else None
        return started is not None and started >= restarted_at - 2, elapsed.stdout
    wait_until(f"slurmd running again on {name}", slurmd_restarted, timeout=120)
    wait_nodes_idle(controller, compute_names)
    ran = controller.run(as_user(f"srun --nodelist={name} --ntasks=1 --mem=16 --chdir=/tmp --immediate=60 hostname -s"))
    assert (ran.rc, ran.stdout.strip()) == (0, name), ran.stderr


def test_rerun_while_a_job_runs_restarts_nothing_and_resumes_a_rebooted_node(
    run_playbook, controller, computes, compute_names, cluster_hosts, job_user
):
    tag = new_tag("rerun")
    job = submit_held_job(controller, tag, node=compute_names[0])
    wait_job_state(controller, job, {"RUNNING"})
    down = compute_names[-1]
    controller.check_output(f"scontrol update NodeName={down} State=DOWN Reason='Node unexpectedly rebooted'")
    assert node_states(controller)[down] == "down"
    pids = daemon_pids(cluster_hosts)

    result, output = rerun(run_playbook)
    assert result.returncode == 0, failure(output)
    assert "RUNNING HANDLER" not in output
    assert [task for task, host in changed_tasks(output) if "Resume" not in task] == []
    assert daemon_pids(cluster_hosts) == pids
    assert f"Resumed {down} (it was down: Node unexpectedly rebooted)" in output
    changes = recap(result.stdout)
    assert all(changes[h.backend.hostname] == (0, 0) for h in computes), changes
    assert job_fields(controller, job)["JobState"] == "RUNNING"
    release_and_expect_success(controller, computes, tag, [job])
    wait_nodes_idle(controller, compute_names)


def test_partition_change_writes_only_the_controller_and_restarts_no_daemon(
    run_playbook, controller, controller_name, computes, compute_names, cluster_hosts, job_user
):
    tag = new_tag("maxtime")
    job = submit_held_job(controller, tag, node=compute_names[0])
    wait_job_state(controller, job, {"RUNNING"})
    pids = daemon_pids(cluster_hosts)
    SITE_VARS["slurm_partitions"] = [{"name": "main", "default": True, "default_time": "01:00:00", "max_time": "2-00:00:00"}]

    result, output = rerun(run_playbook)
    assert result.returncode == 0, failure(output)
    changes = recap(result.stdout)
    assert changes[controller_name][0] > 0, changes
    assert all(changes[name] == (0, 0) for name in compute_names), changes
    written = changed_tasks(output)
    assert ("hpc.slurm.slurm : Write slurm.conf", controller_name) in written, written
    assert ("hpc.slurm.slurm : Tell slurmctld and every slurmd to read the new configuration", controller_name) in written
    assert not [task for task, _ in written if "Restart" in task or "Start" in task], written
    # Partitions take `scontrol reconfigure` (slurm.conf(5)): no daemon restarted anywhere.
    assert daemon_pids(cluster_hosts) == pids
    assert "MaxTime=2-00:00:00" in controller.check_output("scontrol --oneliner show partition main")
    wait_conf_everywhere(cluster_hosts, "MaxTime=2-00:00:00")
    for node in computes:
        assert "MaxTime=2-00:00:00" in node.check_output("scontrol --oneliner show partition main")
    assert job_fields(controller, job)["JobState"] == "RUNNING"
    release_and_expect_success(controller, computes, tag, [job])
    wait_nodes_idle(controller, compute_names)


def test_configuration_slurmctld_refuses_is_rolled_back_everywhere(
    run_playbook, controller, computes, compute_names, cluster_hosts, job_user
):
    tag = new_tag("refused")
    job = submit_held_job(controller, tag, node=compute_names[0])
    wait_job_state(controller, job, {"RUNNING"})
    digests, slurmd_pids, files = conf_digests(cluster_hosts), daemon_pids(computes), controller_conf(controller)

    # Passes the key check (a known key), but slurmctld cannot parse the value.
    result, output = rerun(run_playbook, extra={"slurm_config_overrides": {"SelectTypeParameters": "CR_Bogus"}})
    assert result.returncode != 0, failure(output)
    assert "slurmctld refused the new configuration. Slurm said:" in output
    assert "error: Bad SelectTypeParameter: CR_Bogus" in output
    assert "Restart slurmd" not in output
    assert controller_conf(controller) == files
    assert conf_digests(cluster_hosts) == digests
    assert "is UP" in controller.check_output("scontrol ping")
    assert daemon_pids(computes) == slurmd_pids
    assert job_fields(controller, job)["JobState"] == "RUNNING"
    release_and_expect_success(controller, computes, tag, [job])
    wait_nodes_idle(controller, compute_names)


def test_added_node_joins_and_runs_jobs(
    run_playbook, inventory_with_spare, controller, computes, compute_names, cluster_hosts, spare,
    fresh_spare_world_writable, job_user
):
    tag = new_tag("grow")
    job = submit_held_job(controller, tag, node=compute_names[0])
    wait_job_state(controller, job, {"RUNNING"})
    name = spare.backend.hostname

    result, output = rerun(run_playbook, inventory=inventory_with_spare)
    assert result.returncode == 0, failure(output)
    assert len(set(conf_digests([*cluster_hosts, spare]).values())) == 1
    # The new node gets munge's key and slurmd's options, and no configuration file of its own.
    assert not spare.file("/etc/slurm/slurm.conf").exists and not spare.file("/etc/slurm/cgroup.conf").exists
    assert f"--conf-server {controller.backend.hostname}:6817" in spare.file("/etc/default/slurmd").content_string
    # A new node changes the node definitions: Slurm 22.05 restarts slurmctld and every slurmd for it.
    restarted = {host for task, host in changed_tasks(output) if task.startswith("hpc.slurm.slurm : Restart")}
    assert restarted == {controller.backend.hostname, *compute_names}, restarted
    assert node_states(controller)[name] == "idle"
    ran = controller.run(as_user(f"srun --nodelist={name} --ntasks=1 --mem=16 --chdir=/tmp --immediate=60 hostname -s"))
    assert (ran.rc, ran.stdout.strip()) == (0, name), ran.stderr
    release_and_expect_success(controller, computes, tag, [job])
    wait_nodes_idle(controller, [*compute_names, name])
    created = set(spare.check_output(WORLD_WRITABLE).splitlines()) - fresh_spare_world_writable
    assert not created, f"world-writable paths created on {name}: {sorted(created)}"


def test_removed_node_is_forgotten_while_the_others_keep_their_jobs(
    run_playbook, controller, computes, compute_names, cluster_hosts, spare, job_user
):
    tag = new_tag("shrink")
    jobs = [submit_held_job(controller, tag, node=name) for name in compute_names]
    for job in jobs:
        wait_job_state(controller, job, {"RUNNING"})
    name = spare.backend.hostname

    # The molecule inventory has the spare host outside the slurmd group again.
    result, output = rerun(run_playbook)
    assert result.returncode == 0, failure(output)
    gone = controller.run(f"scontrol show node {name}")
    assert gone.rc != 0 and "not found" in gone.stdout + gone.stderr, gone.stdout
    assert set(node_states(controller)) == set(compute_names)
    wait_conf_everywhere(cluster_hosts, "NodeName=")
    assert all(name not in text for text in (h.check_output(
        "cat $(ls /etc/slurm/slurm.conf 2>/dev/null || echo /run/slurm/conf/slurm.conf)") for h in cluster_hosts))
    assert {job_fields(controller, job)["JobState"] for job in jobs} == {"RUNNING"}
    release_and_expect_success(controller, computes, tag, jobs)
    wait_nodes_idle(controller, compute_names)


def test_controller_restart_keeps_the_queue_and_jobs_complete(controller, controller_name, computes, compute_names, job_user):
    tag = new_tag("ctlrestart")
    jobs = [submit_held_job(controller, tag, exclusive=True) for _ in range(len(compute_names) * 2)]

    def split_running_pending():
        states = [job_fields(controller, job).get("JobState") for job in jobs]
        return states.count("RUNNING") == len(compute_names) and states.count("PENDING") == len(compute_names), states
    wait_until("one running job per node, the rest queued", split_running_pending)
    running = {job for job in jobs if job_fields(controller, job)["JobState"] == "RUNNING"}

    subprocess.run(["docker", "restart", controller_name], check=True, capture_output=True, timeout=180)

    def answers():
        ping = controller.run("scontrol ping")
        return ping.rc == 0 and "is UP" in ping.stdout, ping.stdout + ping.stderr
    wait_until("slurmctld answering after the controller restart", answers, timeout=120)
    after = {job: job_fields(controller, job).get("JobState") for job in jobs}
    assert {job for job, state in after.items() if state == "RUNNING"} == running, after
    assert {state for job, state in after.items() if job not in running} == {"PENDING"}, after
    release_and_expect_success(controller, computes, tag, jobs)
    wait_nodes_idle(controller, compute_names)


def test_node_with_a_foreign_munge_key_fails_the_health_check_naming_it(
    run_playbook, controller_name, computes, compute_names, controller, job_user
):
    node, name = computes[-1], compute_names[-1]
    cluster_key = controller.check_output("base64 -w0 /etc/munge/munge.key")
    node.check_output("umask 0277 && head -c 128 /dev/urandom > /etc/munge/munge.key && systemctl restart munge")
    try:
        checked = run_playbook(HEALTH_PLAYBOOK, extra_vars={**SITE_VARS, "slurm_health_timeout": 20},
                               env={"ANSIBLE_PIPELINING": "1"})
        output = flat(checked.stdout + checked.stderr)
        assert checked.returncode != 0, failure(output)
        assert f"munge: credentials made on {controller_name} do not decode on {name}: {name}: unmunge:" in output, \
            failure(checked.stdout + checked.stderr)
        assert "the munge keys differ or munged is not running there" in output
        for other in compute_names[:-1]:
            assert f"do not decode on {other}" not in output
    finally:
        node.check_output(f"umask 0277 && echo {cluster_key} | base64 -d > /etc/munge/munge.key && systemctl restart munge")
    # The failed launch leaves the node completing until slurmctld resends the job's end to it.
    wait_nodes_idle(controller, compute_names, timeout=300)


def test_munge_key_rotation_reaches_every_node_and_leaves_no_old_key(
    run_playbook, controller, computes, compute_names, cluster_hosts, job_user
):
    old_key = base64.b64decode(controller.check_output("base64 -w0 /etc/munge/munge.key"))
    munged_before = {h.backend.hostname: h.check_output("pgrep -x munged") for h in cluster_hosts}
    new_key = secrets.token_urlsafe(72)
    SITE_VARS["munge_key"] = new_key

    result, output = rerun(run_playbook, "-vvv", "--diff")
    assert result.returncode == 0, failure(output)
    for form in key_forms(new_key.encode()) + key_forms(old_key):
        assert form not in output
    digest = hashlib.sha256(new_key.encode()).hexdigest()
    for host in cluster_hosts:
        assert host.check_output("sha256sum /etc/munge/munge.key").split()[0] == digest
        assert host.check_output("pgrep -x munged") != munged_before[host.backend.hostname]
    ran = controller.run(as_user(
        f"srun --nodes={len(compute_names)} --ntasks-per-node=1 --mem=16 --chdir=/tmp --immediate=60 hostname -s"))
    assert ran.rc == 0, ran.stderr
    assert sorted(ran.stdout.split()) == sorted(compute_names)

    needles = [base64.b64encode(old_key[:64]).decode(), base64.b64encode(base64.b64encode(old_key)[:64]).decode()]
    script = base64.b64encode(FIND_BYTES.encode()).decode()
    for host in cluster_hosts:
        found = host.check_output(f"echo {script} | base64 -d | python3 - {' '.join(needles)}")
        assert not found, f"the old munge key is still on {host.backend.hostname}: {found}"
    local_tmp = Path.home() / ".ansible" / "tmp"
    if local_tmp.exists():
        encoded = base64.b64encode(old_key)[:64]
        leaks = [str(p) for p in local_tmp.rglob("*") if p.is_file() and encoded in p.read_bytes()]
        assert not leaks, leaks


def test_check_mode_on_the_converged_cluster_changes_nothing_and_shows_no_key(run_playbook, controller, cluster_hosts):
    key = base64.b64decode(controller.check_output("base64 -w0 /etc/munge/munge.key"))
    result, output = rerun(run_playbook, "--check", "--diff")
    assert result.returncode == 0, failure(output)
    changes = recap(result.stdout)
    assert all(changes[h.backend.hostname] == (0, 0) for h in cluster_hosts), changes
    for form in key_forms(key):
        assert form not in output


def test_changed_directory_modes_are_mended_without_restarting_a_daemon(run_playbook, controller, computes, cluster_hosts):
    node = computes[0]
    wanted = {node: {"/var/log/slurm": 0o750, "/var/lib/munge": 0o700}, controller: {"/var/lib/slurm/slurmctld": 0o700}}
    for host, paths in wanted.items():
        host.check_output(f"chmod 0775 {' '.join(paths)}")
    pids = daemon_pids(cluster_hosts)

    result, output = rerun(run_playbook)
    assert result.returncode == 0, failure(output)
    changes = recap(result.stdout)
    # hpc.slurm.munge's directory task and hpc.slurm.slurm's.
    assert changes[node.backend.hostname] == (2, 0), changes
    assert changes[controller.backend.hostname] == (1, 0), changes
    assert all(changes[h.backend.hostname] == (0, 0) for h in computes[1:]), changes
    for host, paths in wanted.items():
        for path, mode in paths.items():
            assert host.file(path).mode == mode, (host.backend.hostname, path)
    # Only new text in slurm.conf or cgroup.conf restarts a daemon, and munged only for a new key.
    assert daemon_pids(cluster_hosts) == pids


def test_munge_role_alone_mends_a_directory(run_playbook, computes, cluster_hosts):
    node = computes[-1]
    node.check_output("chmod 0755 /var/lib/munge")
    pids = daemon_pids(cluster_hosts)

    result = run_playbook(MUNGE_PLAYBOOK, env={"ANSIBLE_PIPELINING": "1"})
    output = result.stdout + result.stderr
    assert result.returncode == 0, failure(output)
    changes = recap(result.stdout)
    assert changes[node.backend.hostname] == (1, 0), changes
    others = [h.backend.hostname for h in cluster_hosts if h.backend.hostname != node.backend.hostname]
    assert all(changes[name] == (0, 0) for name in others), changes
    assert node.file("/var/lib/munge").mode == 0o700
    assert daemon_pids(cluster_hosts) == pids


def test_a_slurm_conf_left_by_a_pushed_deployment_is_moved_aside(run_playbook, controller, computes, compute_names, job_user):
    """A compute node upgraded from the non-configless design still has a slurm.conf of its own,
    which client commands would read before slurmd's fetched copy."""
    node, name = computes[-1], compute_names[-1]
    node.check_output("printf 'ClusterName=stale\\nSlurmctldHost=nowhere\\n' > /etc/slurm/slurm.conf && "
                      "printf 'CgroupPlugin=autodetect\\n' > /etc/slurm/cgroup.conf")
    assert node.run("sinfo").rc != 0

    result, output = rerun(run_playbook)
    assert result.returncode == 0, failure(output)
    assert not node.file("/etc/slurm/slurm.conf").exists and not node.file("/etc/slurm/cgroup.conf").exists
    assert "ClusterName=stale" in node.file("/etc/slurm/slurm.conf.before-configless").content_string
    assert node.file("/etc/slurm/cgroup.conf.before-configless").exists
    wait_nodes_idle(controller, compute_names)
    listed = node.run(as_user("sinfo --noheader --Node --format=%N"))
    assert listed.rc == 0 and name in listed.stdout.split(), listed.stderr
    node.check_output("rm /etc/slurm/slurm.conf.before-configless /etc/slurm/cgroup.conf.before-configless")


def test_files_keep_their_owners_and_modes(cluster_hosts, computes, controller):
    for host in cluster_hosts:
        name = host.backend.hostname
        key = host.file("/etc/munge/munge.key")
        assert (key.user, key.group, key.mode) == ("munge", "munge", 0o400), name
        for path in ("/etc/munge", "/var/lib/munge", "/var/log/munge"):
            directory = host.file(path)
            assert (directory.user, directory.group, directory.mode) == ("munge", "munge", 0o700), (name, path)
        configs = host.check_output("ls /etc/slurm/slurm.conf* /etc/slurm/cgroup.conf* /etc/default/slurmd 2>/dev/null || true").split()
        if host.backend.hostname == controller.backend.hostname:
            assert len(configs) > 2, configs
        for path in configs:
            conf = host.file(path)
            assert (conf.user, conf.group, conf.mode) == ("root", "root", 0o644), (name, path)
        writable = host.check_output(
            "find /etc/slurm /etc/munge /var/lib/munge /var/log/munge /var/lib/slurm /var/log/slurm -perm -0002 ! -type l ! -type s")
        assert not writable, (name, writable)
    state = controller.file("/var/lib/slurm/slurmctld")
    assert (state.user, state.group, state.mode) == ("slurm", "slurm", 0o700)
