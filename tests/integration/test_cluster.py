"""Behaviour of a converged cluster: nodes idle, jobs run everywhere, munge and files right."""
import hashlib
import itertools
import re

import pytest



def node_name(host):
    return host.check_output("hostname -s")


def parse_pairs(text):
    return dict(re.findall(r"(\w+)=(\S+)", text))


def as_user(user, command):
    return f"runuser -u {user} -- {command}"


def test_every_node_is_idle(controller, computes):
    states = dict(
        line.split() for line in controller.check_output("sinfo --noheader --Node --format='%N %T'").splitlines()
    )
    assert states == {node_name(h): "idle" for h in computes}


def test_srun_reaches_every_node_as_root_and_as_a_normal_user(controller, computes, job_user):
    command = f"""srun --nodes={len(computes)} --ntasks-per-node=1 --chdir=/tmp sh -c 'echo "$(hostname -s) $(id -un)"'"""
    for user in ("root", job_user):
        ran = controller.run(command if user == "root" else as_user(user, command))
        assert ran.rc == 0, ran.stderr
        assert sorted(ran.stdout.splitlines()) == sorted(f"{node_name(h)} {user}" for h in computes)


@pytest.mark.parametrize("exit_code", [0, 3])
def test_sbatch_wait_propagates_the_exit_code(controller, job_user, exit_code):
    ran = controller.run(as_user(job_user, f"sbatch --wait --quiet --chdir=/tmp --output=/dev/null --wrap='exit {exit_code}'"))
    assert ran.rc == exit_code, ran.stderr


def test_a_munge_credential_crosses_every_pair_of_hosts(all_hosts):
    pairs = list(itertools.permutations(all_hosts, 2)) or [(all_hosts[0], all_hosts[0])]
    for maker, reader in pairs:
        credential = maker.check_output("munge --no-input")
        decoded = reader.run(f"echo '{credential}' | unmunge")
        assert decoded.rc == 0, decoded.stderr
        assert "STATUS:          Success (0)" in decoded.stdout


def test_munge_key_and_directories_are_private(all_hosts):
    for host in all_hosts:
        key = host.file("/etc/munge/munge.key")
        assert (key.user, key.group, key.mode) == ("munge", "munge", 0o400)
        for path in ("/etc/munge", "/var/lib/munge", "/var/log/munge"):
            directory = host.file(path)
            assert (directory.user, directory.group, directory.mode) == ("munge", "munge", 0o700), path


def test_all_hosts_share_one_munge_key(all_hosts):
    assert len({host.check_output("sha256sum /etc/munge/munge.key").split()[0] for host in all_hosts}) == 1


def test_configuration_lives_on_the_controller_and_compute_nodes_fetch_it(controller, computes):
    """Configless: slurm.conf and cgroup.conf only on the controller; each slurmd fetched the same bytes."""
    name = controller.backend.hostname
    wanted = {}
    for file in ("slurm.conf", "cgroup.conf"):
        conf = controller.file(f"/etc/slurm/{file}")
        assert (conf.user, conf.group, conf.mode) == ("root", "root", 0o644), file
        wanted[file] = hashlib.sha256(conf.content).hexdigest()
    assert "SlurmctldParameters=enable_configless" in controller.file("/etc/slurm/slurm.conf").content_string
    for host in computes:
        if host.backend.hostname == name:
            continue
        assert not host.file("/etc/slurm/slurm.conf").exists and not host.file("/etc/slurm/cgroup.conf").exists
        assert f'SLURMD_OPTIONS="--conf-server {name}:6817"' in host.file("/etc/default/slurmd").content_string
        for file, digest in wanted.items():
            assert hashlib.sha256(host.file(f"/run/slurm/conf/{file}").content).hexdigest() == digest, file


def test_client_commands_work_on_every_node(cluster, all_hosts, job_user):
    names = sorted(node_name(h) for h in all_hosts if h.backend.hostname in cluster["slurmd"])
    for host in all_hosts:
        listed = host.run(as_user(job_user, "sinfo --noheader --Node --format=%N"))
        assert listed.rc == 0, (host.backend.hostname, listed.stderr)
        assert sorted(set(listed.stdout.split())) == names, host.backend.hostname
        ran = host.run(as_user(job_user, f"sbatch --wait --quiet --chdir=/tmp --output=/dev/null --nodes={len(names)} --wrap=true"))
        assert ran.rc == 0, (host.backend.hostname, ran.stderr)


def test_registered_hardware_matches_slurmd_C(controller, computes, hostvars):
    for host in computes:
        detected = {k: int(v) if v.isdigit() else v for k, v in parse_pairs(host.check_output("slurmd -C").splitlines()[0]).items()}
        registered = parse_pairs(controller.check_output(f"scontrol --oneliner show node {detected['NodeName']}"))
        reserve = int(hostvars(host.backend.hostname).get("slurm_memory_reserve_mb", 1024))
        assert int(registered["CPUTot"]) == detected["CPUs"]
        assert int(registered["Boards"]) == detected["Boards"]
        assert int(registered["CoresPerSocket"]) == detected["CoresPerSocket"]
        assert int(registered["ThreadsPerCore"]) == detected["ThreadsPerCore"]
        assert int(registered["Sockets"]) == detected["SocketsPerBoard"] * detected["Boards"]
        assert int(registered["RealMemory"]) == detected["RealMemory"] - reserve
        assert "Reason" not in registered, registered.get("Reason")


def test_each_daemon_runs_only_where_its_group_says(controller, computes, all_hosts):
    for host in all_hosts:
        is_controller = host.backend.hostname == controller.backend.hostname
        is_compute = any(host.backend.hostname == c.backend.hostname for c in computes)
        for daemon, wanted in (("slurmctld", is_controller), ("slurmd", is_compute), ("munge", True)):
            assert host.package(daemon).is_installed == wanted, (host.backend.hostname, daemon)
            assert host.service(daemon).is_running == wanted, (host.backend.hostname, daemon)
            if wanted:
                assert host.service(daemon).is_enabled, (host.backend.hostname, daemon)


@pytest.mark.multinode
def test_etc_hosts_lists_every_cluster_host(all_hosts, hostvars):
    assert all(hostvars(h.backend.hostname).get("slurm_manage_etc_hosts") for h in all_hosts), \
        "the multi-node scenarios set slurm_manage_etc_hosts: true"
    addresses = {node_name(h): h.check_output("hostname -I").split()[0] for h in all_hosts}
    for host in all_hosts:
        hosts_file = host.file("/etc/hosts").content_string
        block = hosts_file.split("# BEGIN hpc.slurm cluster hosts")[1].split("# END hpc.slurm cluster hosts")[0]
        assert dict(line.split()[::-1] for line in block.strip().splitlines()) == addresses


@pytest.mark.multinode
def test_each_role_runs_alone_with_only_its_documented_variables(run_playbook, controller):
    """cluster_users, munge, slurm and slurm_health, each in a play of its own: nothing undefined, nothing changed."""
    result = run_playbook("tests/integration/playbooks/roles_alone.yml", env={"ANSIBLE_PIPELINING": "1"})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for role in ("hpc.slurm.cluster_users", "hpc.slurm.munge", "hpc.slurm.slurm", "hpc.slurm.slurm_health"):
        assert f"TASK [{role} : " in output, role
    assert re.findall(r"changed=(\d+)", result.stdout) and set(re.findall(r"changed=(\d+)", result.stdout)) == {"0"}, \
        output[-3000:]
    assert "Health job as nobody ran on: " in output
