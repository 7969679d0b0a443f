"""Bad settings are refused before any host changes, with a message that says what to fix."""
import re

import pytest

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
}

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
    assert "TASK [hpc.slurm.munge : Install munge]" not in result.stdout
    assert [h.check_output(FINGERPRINT) for h in all_hosts] == before
