"""Hostile values in names, addresses and slurm.conf settings: refused before any host changes,
or written so that they stay one inert value (proved by reading them back from Slurm)."""
import hashlib
import re

import pytest

pytestmark = pytest.mark.reruns

INJECTED = "PartitionName=evil Nodes=ALL"

# setting -> (extra vars, words the refusal must contain)
REFUSED = {
    "partition name with a space": ({"slurm_partitions": [{"name": "main part"}]}, "Partition main part: give it a 'name'"),
    "partition name with '='": ({"slurm_partitions": [{"name": "main=x"}]}, "Partition main=x: give it a 'name'"),
    "partition name ending in a newline": ({"slurm_partitions": [{"name": "main\n"}]}, "give it a 'name' made of letters"),
    "partition name with a command substitution": (
        {"slurm_partitions": [{"name": "$(touch /tmp/hpc-pwned)"}]}, "Partition $(touch /tmp/hpc-pwned): give it",
    ),
    "partition name in unicode": ({"slurm_partitions": [{"name": "haupt\u00e4"}]}, "give it a 'name' made of letters"),
    "cluster name with a quote": ({"slurm_cluster_name": "clu'ster"}, "slurm_cluster_name 'clu'ster' on"),
    "partition time smuggling a line": (
        {"slurm_partitions": [{"name": "main", "max_time": f"1:00:00\n{INJECTED}"}]}, "key MaxTime: value",
    ),
    "partition setting key with a space": (
        {"slurm_partitions": [{"name": "main", "settings": {"Max Nodes": 1}}]}, "invalid key 'Max Nodes'",
    ),
    "node feature with '#'": ({"slurm_node_settings": {"Features": "gpu#ib"}}, "contains '#', which starts a comment"),
    "node address smuggling an /etc/hosts line": (
        {"slurm_node_address": "10.0.0.1\n10.6.6.6 evil"}, "is not a host name or IP address",
    ),
    "node address with a shell pipe": ({"slurm_node_address": "10.0.0.1|reboot"}, "is not a host name or IP address"),
    "override value with a carriage return": (
        {"slurm_config_overrides": {"SchedulerParameters": f"bf_continue\r{INJECTED}"}}, "contains a line break",
    ),
    "override value with '#'": ({"slurm_config_overrides": {"SchedulerParameters": "bf_continue#x"}}, "starts a comment"),
    "override value closing its own quotes": (
        {"slurm_config_overrides": {"MailProg": '/bin/true" SlurmUser="root'}}, "contains a double quote",
    ),
    "override key carrying '=' and a second key": (
        {"slurm_config_overrides": {"MaxJobCount=1 SlurmUser": "root"}}, "does not know: MaxJobCount=1 SlurmUser",
    ),
}

FINGERPRINT = ("sha256sum /etc/slurm/slurm.conf /etc/slurm/cgroup.conf /etc/munge/munge.key /etc/hosts; "
               "stat -c %Y /etc/slurm/slurm.conf; ls /tmp")


def fingerprints(hosts):
    return [h.run(FINGERPRINT).stdout for h in hosts]


@pytest.mark.parametrize("case", REFUSED)
def test_hostile_value_is_refused_before_any_change(case, run_playbook, all_hosts):
    extra_vars, message = REFUSED[case]
    before = fingerprints(all_hosts)
    result = run_playbook("site.yml", extra_vars=extra_vars)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert message in " ".join(output.split()), output[-3000:]
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", result.stdout, re.MULTILINE)
    assert recap and all(changed == "0" for _, changed in recap), recap
    assert "TASK [hpc.slurm.munge : Install munge" not in result.stdout
    assert fingerprints(all_hosts) == before


def test_munge_key_of_shell_metacharacters_is_installed_byte_for_byte(run_playbook, all_hosts, controller):
    key = "'\"$(touch /tmp/hpc-pwned)`touch /tmp/hpc-pwned`;|&<>\\ \u00fc\n#*?" * 2
    result = run_playbook("site.yml", extra_vars={"munge_key": key})
    assert result.returncode == 0, result.stdout[-3000:]
    digest = hashlib.sha256(key.encode()).hexdigest()
    credential = controller.check_output("munge --no-input")
    for host in all_hosts:
        assert host.check_output("sha256sum /etc/munge/munge.key").split()[0] == digest
        assert not host.file("/tmp/hpc-pwned").exists
        assert host.run(f"echo '{credential}' | unmunge").rc == 0


def test_override_value_with_spaces_quotes_and_equals_stays_one_value(run_playbook, all_hosts, controller):
    # MailProg is read only when a job asks for mail, and slurmctld runs it without a shell.
    value = "/usr/bin/true $(touch /tmp/hpc-pwned); MaxJobCount=7 | 'x' `id` \u00fc"
    result = run_playbook("site.yml", extra_vars={"slurm_config_overrides": {"MailProg": value}})
    try:
        assert result.returncode == 0, result.stdout[-3000:]
        for host in all_hosts:
            conf = host.file("/etc/slurm/slurm.conf").content_string
            assert f'\nMailProg="{value}"\n' in conf
            assert not re.search(r"^\s*MaxJobCount", conf, re.MULTILINE | re.IGNORECASE)
            assert not host.file("/tmp/hpc-pwned").exists
        config = dict(re.findall(r"^(\w+)\s+= (.*)$", controller.check_output("scontrol show config"), re.MULTILINE))
        assert config["MailProg"] == value
        assert config["MaxJobCount"] == "10000"
    finally:
        restored = run_playbook("site.yml")
        assert restored.returncode == 0, restored.stdout[-3000:]
