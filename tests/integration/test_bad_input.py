"""Bad settings are refused before any host changes, with a message that says what to fix."""
import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.reruns

CASES = {
    "munge key too short": ({"munge_key": "tooshort"}, "munge_key is 8 bytes long"),
    "negative memory reserve": ({"slurm_memory_reserve_mb": -1}, "must be 0 or more"),
    "memory reserve above the node's memory": ({"slurm_memory_reserve_mb": 10**9}, "leaves nothing for jobs"),
    "partition naming an unknown node": (
        {"slurm_partitions": [{"name": "main", "nodes": ["ghost07"]}]},
        "names nodes that are not compute hosts of this inventory: ghost07",
    ),
    "override key removed from Slurm": ({"slurm_config_overrides": {"FastSchedule": 1}}, "does not know: FastSchedule"),
    "misspelt override key": (
        {"slurm_config_overrides": {"SelectTypeParameter": "CR_Core"}},
        "does not know: SelectTypeParameter",
    ),
    "process tracking not a choice": ({"slurm_process_tracking": "cgroups"}, "slurm_process_tracking"),
    "hostile partition name": ({"slurm_partitions": [{"name": "main;reboot"}]}, "Partition main;reboot: give it a 'name'"),
    "newline smuggled into a value": (
        {"slurm_config_overrides": {"MaxJobCount": "100\nSlurmUser=root"}},
        "MaxJobCount",
    ),
    "value ending in a line continuation": (
        {"slurm_config_overrides": {"SchedulerParameters": "bf_continue\\"}},
        "key SchedulerParameters: value 'bf_continue\\\\' ends in '\\', which continues the line",
    ),
    "partition named DEFAULT": ({"slurm_partitions": [{"name": "DEFAULT"}]}, "DEFAULT is Slurm's name for the defaults"),
    "two partitions of one name": (
        {"slurm_partitions": [{"name": "main"}, {"name": "main"}]}, "Partition main is declared twice",
    ),
    "health timeout below 1 s": ({"slurm_health_timeout": 0}, "slurm_health_timeout is 0"),
}

# Several problems of one kind in one run: the check names them all at once. (The partition
# checks are the filter slurm_partition_settings, unit-tested case by case.)
REFUSED_TOGETHER = {
    "a host's Slurm settings": (
        {"slurm_slurmd_port": 6817, "slurm_start_timeout": 0, "slurm_node_settings": {"NodeAddr": "10.0.0.9"},
         "slurm_config_overrides": {"ControlMachine": "elsewhere", "slurmctldhost": "x",
                                    "SlurmctldParameters": "idle_on_node_suspend"}},
        ["must be two different ports from 1 to 65535", "slurm_start_timeout is 0", "sets NodeAddr; NodeName",
         "slurm_config_overrides sets ControlMachine, SlurmctldHost, which the roles write from the inventory: "
         "use the slurmctld group's host for ControlMachine", "lacks enable_configless"],
    ),
    "ports out of range": ({"slurm_slurmd_port": 70000, "slurm_slurmctld_port": 0}, ["must be two different ports"]),
    "accounts without an accounting host": (
        {"slurm_accounting_accounts": [{"name": "physics", "users": ["nobody"]}]},
        ["the inventory group 'slurmdbd' has no host"],
    ),
    "munge settings": (
        # 16 characters, 31 bytes: munged counts bytes.
        {"munge_key": "\u00fc" * 15 + "a", "munge_key_generated_bytes": 16, "munge_restart_timeout": 0},
        ["munge_key is 31 bytes long", "munge takes keys of 32 to 1024 bytes", "munge_restart_timeout is 0"],
    ),
}

# Settings at the edges of what the checks accept, all in one run: they must compose into a
# slurm.conf (the template renders in check mode; --diff shows it) and change nothing.
ACCEPTED = {
    "slurm_partitions": [
        {"name": "main", "default": True, "default_time": "00:10:00", "max_time": "UNLIMITED", "state": "UP",
         "settings": {"PriorityTier": 2, "OverSubscribe": "NO", "AllowGroups": ["root", "users"]}},
        {"name": "second.part-2", "default": False}],
    "slurm_node_settings": {"Features": ["a", "b"], "Weight": 5, "RealMemory": 100},
    "slurm_config_overrides": {"MpiDefault": None, "schedulertype": "sched/builtin",
                               "SchedulerParameters": "bf_continue,bf_interval=60", "MailProg": "/usr/bin/mail -s x"},
    "slurm_config_base": {"SlurmUser": "slurm", "AuthType": "auth/munge",
                          "SlurmctldParameters": "enable_configless,idle_on_node_suspend"},
    # 32 bytes in 16 characters.
    "munge_key": "\u00fc" * 16,
}
ACCEPTED_LINES = ["PartitionName=main", "AllowGroups=root,users", "PartitionName=second.part-2",
                  "Features=a,b", "RealMemory=100", "SchedulerType=sched/builtin", 'MailProg="/usr/bin/mail -s x"',
                  "SlurmctldParameters=enable_configless,idle_on_node_suspend"]

FINGERPRINT = "sha256sum /etc/slurm/slurm.conf /etc/munge/munge.key; stat -c %Y /etc/slurm/slurm.conf"


@pytest.mark.parametrize("case", CASES)
def test_bad_setting_is_refused_before_any_change(case, run_playbook, all_hosts):
    extra_vars, message = CASES[case]
    before = [h.check_output(FINGERPRINT) for h in all_hosts]
    result = run_playbook("site.yml", extra_vars=extra_vars)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in " ".join(output.split()), output
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", result.stdout, re.MULTILINE)
    assert recap and all(changed == "0" for _, changed in recap), recap
    assert "TASK [hpc.slurm.munge : Install munge" not in result.stdout
    assert [h.check_output(FINGERPRINT) for h in all_hosts] == before


def assert_refused_before_any_change(run_playbook, all_hosts, extra_vars, messages, inventory=None):
    before = [h.check_output(FINGERPRINT) for h in all_hosts]
    result = run_playbook("site.yml", extra_vars=extra_vars, inventory=inventory)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-3000:]
    for message in messages:
        assert message in output, (message, output[-3000:])
    assert "TASK [hpc.slurm.munge : Install munge" not in result.stdout
    assert [h.check_output(FINGERPRINT) for h in all_hosts] == before


@pytest.mark.parametrize("case", REFUSED_TOGETHER)
def test_several_bad_settings_are_named_at_once(case, run_playbook, all_hosts):
    assert_refused_before_any_change(run_playbook, all_hosts, *REFUSED_TOGETHER[case])


def test_accepted_settings_compose_a_slurm_conf(run_playbook, all_hosts):
    before = [h.check_output(FINGERPRINT) for h in all_hosts]
    result = run_playbook("site.yml", "--check", "--diff", extra_vars=ACCEPTED)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    written = output.split("TASK [hpc.slurm.slurm : Write slurm.conf]")[1].split("TASK [")[0]
    added = "\n".join(line for line in written.splitlines() if line.startswith("+"))
    for line in ACCEPTED_LINES:
        assert line in added, (line, written[-3000:])
    assert [h.check_output(FINGERPRINT) for h in all_hosts] == before


def test_two_hosts_with_one_host_name_are_refused(run_playbook, inventory_file, all_hosts, tmp_path):
    """The same machine twice under two inventory names: Slurm would see one node name twice."""
    inventory = yaml.safe_load(Path(inventory_file).read_text())
    (name, hostvars), = inventory["all"]["hosts"].items()
    inventory["all"]["hosts"]["alias-of-" + name] = dict(hostvars, ansible_host=name)
    inventory["slurmd"]["hosts"]["alias-of-" + name] = None
    path = tmp_path / "twice.yml"
    path.write_text(yaml.safe_dump(inventory))
    before = [h.check_output(FINGERPRINT) for h in all_hosts]
    result = run_playbook("site.yml", inventory=path)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-3000:]
    assert "Several hosts have the same host name, which Slurm uses as the node name" in output, output[-3000:]
    assert f"({name}, alias-of-{name})" in output or f"(alias-of-{name}, {name})" in output
    assert [h.check_output(FINGERPRINT) for h in all_hosts] == before


def inventory_with_accounting_on(inventory_file, tmp_path):
    """This scenario's inventory with its one host in the slurmdbd group too."""
    inventory = yaml.safe_load(Path(inventory_file).read_text())
    (name, _), = inventory["all"]["hosts"].items()
    inventory["slurmdbd"] = {"hosts": {name: None}}
    path = tmp_path / "accounting.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


# Each a run of its own: the check play stops at the first role whose check fails.
ACCOUNTING_REFUSED = {
    "accounts that sacctmgr would not take, all named at once": (
        {"slurm_accounting_accounts": [{"name": "physics", "users": ["alice"], "parent": "science",
                             "limits": {"MaxJob": 1, "GrpTRES": "cpu=x", "QOS": "gold"}}],
         "slurm_accounting_users": [{"name": "bob", "account": "chemistry"}]},
        ["MaxJob", "cpu=x", "science", "chemistry", "gold",
         "Jobs run as nobody (the health check), but no account in slurm_accounting_accounts lists them"],
    ),
    "a database password that is too short": (
        {"slurmdbd_storage_password": "short"}, ["slurmdbd_storage_password is 5 characters long"],
    ),
    "a slurmdbd.conf override of a key the role writes": (
        {"slurmdbd_config_overrides": {"StoragePass": "x" * 20, "PurgeJobAfter": "12month"}},
        ["slurmdbd_config_overrides sets StoragePass, which the role writes itself: use slurmdbd_storage_password"],
    ),
}


@pytest.mark.parametrize("case", ACCOUNTING_REFUSED)
def test_bad_accounting_settings_are_refused_before_any_change(case, run_playbook, inventory_file, all_hosts, tmp_path):
    assert_refused_before_any_change(run_playbook, all_hosts, *ACCOUNTING_REFUSED[case],
                                     inventory=inventory_with_accounting_on(inventory_file, tmp_path))
