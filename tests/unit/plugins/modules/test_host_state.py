"""hpc.slurm.host_state: its parsers on recorded real output, and whole runs on this machine's files."""
import hashlib
import json
import os
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.hpc.slurm.plugins.modules import host_state

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_installed_packages_are_those_dpkg_calls_ii():
    recorded = (FIXTURES / "dpkg-query.debian12.txt").read_text()
    assert host_state.installed_packages(recorded) == ["munge", "slurm-client", "slurmd"]
    # Removed with its configuration kept ("rc"), or unpacked and never configured ("iU").
    assert host_state.installed_packages("slurmd rc \nmunge iU \nslurm-client ii \n") == ["slurm-client"]


def test_service_states_follow_the_units_in_the_order_asked():
    recorded = (FIXTURES / "systemctl-show.debian12.txt").read_text()
    states = host_state.service_states(["munge", "slurmd", "slurmctld"], recorded)
    assert states == {"munge": {"active": True, "enabled": True},
                      "slurmd": {"active": True, "enabled": True},
                      "slurmctld": {"active": False, "enabled": False}}


def test_a_running_daemon_that_does_not_start_at_boot_is_not_enabled():
    output = "Id=slurmd.service\nActiveState=active\nUnitFileState=disabled\n"
    assert host_state.service_states(["slurmd"], output) == {"slurmd": {"active": True, "enabled": False}}


def test_a_missing_unit_block_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="described 1 units for 2 names"):
        host_state.service_states(["munge", "slurmd"], "Id=munge.service\nActiveState=active\nUnitFileState=enabled\n")


@pytest.mark.parametrize("version", ["debian12", "debian13"])
def test_node_line_is_the_nodename_line_of_slurmd_c(version):
    recorded = (FIXTURES / f"slurmd-C.{version}.txt").read_text()
    line = host_state.node_line(recorded)
    assert line.startswith("NodeName=") and "RealMemory=" in line and "\n" not in line


def test_no_nodename_line_gives_none():
    assert host_state.node_line("UpTime=0-01:00:00\n") is None


def test_memory_and_capabilities_come_from_proc():
    assert host_state.mem_total_mb("MemTotal:       24684544 kB\nMemFree: 1 kB\n") == 24106
    # CAP_SYS_NICE is bit 23: a test container started with --cap-add SYS_NICE, then Docker's default set.
    assert host_state.cap_eff("Name:\tpython3\nCapEff:\t00000000a8a425fb\n") == 0xa8a425fb
    assert not host_state.cap_eff("CapEff:\t00000000a80425fb\n") & (1 << 23)
    with pytest.raises(ValueError):
        host_state.mem_total_mb("MemFree: 1 kB\n")


def run_module(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit) as ended:
        host_state.main()
    return ended.value.code, json.loads(capsys.readouterr().out)


def test_paths_report_owner_mode_and_checksum_and_absence(tmp_path, capsys):
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=test\n")
    conf.chmod(0o640)
    code, result = run_module({"paths": [str(conf), str(tmp_path), str(tmp_path / "absent")],
                               "contents": [str(conf), str(tmp_path / "absent")]}, capsys)
    assert code == 0 and result["changed"] is False
    found = result["paths"][str(conf)]
    assert found["type"] == "file" and found["mode"] == "0640" and found["exists"] is True
    # The value Ansible's hash('sha256') gives for the same text, which the roles compare it with.
    assert found["sha256"] == hashlib.sha256(b"ClusterName=test\n").hexdigest()
    assert result["paths"][str(tmp_path)]["type"] == "directory"
    assert "sha256" not in result["paths"][str(tmp_path)]
    assert result["paths"][str(tmp_path / "absent")] == {"exists": False}
    assert result["contents"] == {str(conf): "ClusterName=test\n", str(tmp_path / "absent"): None}
    assert found["owner"] and found["group"]


def test_without_systemd_daemon_states_are_unknown(monkeypatch, capsys):
    real_isdir = os.path.isdir
    monkeypatch.setattr(host_state.os.path, "isdir",
                        lambda path: False if path == "/run/systemd/system" else real_isdir(path))
    code, result = run_module({"services": ["munge"]}, capsys)
    assert code == 0
    assert result["services"] == {"munge": {"active": None, "enabled": None}}


def test_facts_are_those_setup_gathers_on_this_machine(capsys):
    from ansible.modules import setup
    code, result = run_module({"facts": True}, capsys)
    assert code == 0
    with patch_module_args({"gather_subset": ["!all", "!min", "platform", "distribution", "service_mgr",
                                              "network"]}), pytest.raises(SystemExit):
        setup.main()
    expected = json.loads(capsys.readouterr().out)["ansible_facts"]
    found = result["ansible_facts"]
    assert found["ansible_hostname"] == os.uname().nodename.split(".")[0]
    assert found["ansible_distribution"] == "Debian" and found["ansible_service_mgr"]
    found_route = found.pop("ansible_default_ipv4", {})
    assert found == {name: expected[name] for name in found}
    # setup adds the interface's netmask, MAC and the like to the three the route gives.
    assert found_route == {key: expected["ansible_default_ipv4"][key] for key in found_route}
    assert found_route.keys() == ({"address", "interface", "gateway"} & expected.get("ansible_default_ipv4", {}).keys())


def test_default_route_is_what_ip_route_get_names():
    recorded = (FIXTURES / "ip-route-get.debian12.txt").read_text()
    assert host_state.default_route(recorded) == {"gateway": "172.20.0.1", "interface": "eth0", "address": "172.20.0.3"}
    # A host on the network with no router: ip names no gateway.
    assert host_state.default_route("8.8.8.8 dev eth0 src 10.0.0.5 uid 0 \n    cache \n") == {
        "interface": "eth0", "address": "10.0.0.5"}
    # No route at all: ip prints its error on stderr only.
    assert host_state.default_route("") == {}


@pytest.mark.parametrize("process_1, systemd_running, expected", [
    ("systemd\n", True, "systemd"),
    ("sleep\n", False, "sleep"),  # the nosystemd test hosts: setup names process 1
    ("runit-init\n", False, "runit"),
    ("bash\n", True, "systemd"),  # a shell as process 1 says nothing, so the systemd canary decides
    ("init\n", False, "sysvinit"),
])
def test_service_mgr_follows_setup(monkeypatch, process_1, systemd_running, expected):
    real_exists = os.path.exists
    monkeypatch.setattr(host_state, "read_text", lambda path: process_1 if path == "/proc/1/comm" else None)
    monkeypatch.setattr(host_state.os.path, "exists", lambda path: (
        systemd_running if path == "/run/systemd/system/" else
        path == "/etc/init.d/" if path in ("/etc/init.d/", "/etc/init/", "/sbin/openrc", "/dev/.run/systemd/",
                                           "/dev/.systemd/") else real_exists(path)))
    monkeypatch.setattr(host_state.os.path, "islink", lambda path: False)

    class Module:
        @staticmethod
        def get_bin_path(name):
            return "/usr/bin/systemctl" if name == "systemctl" else None
    assert host_state.service_mgr(Module) == expected


def test_no_facts_unless_asked(capsys):
    code, result = run_module({"packages": []}, capsys)
    assert code == 0 and "ansible_facts" not in result
