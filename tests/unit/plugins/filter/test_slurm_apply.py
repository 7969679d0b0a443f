"""Unit tests of hpc.slurm.slurm_conf_restarts and slurm_conf_changes, against the restart
table that scripts/extract-slurm-conf-keys.py generated from Debian's slurm.conf(5)."""

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.hpc.slurm.plugins.filter.slurm_apply import (
    FilterModule,
    slurm_conf_changes,
    slurm_conf_restarts,
)

REPO = Path(__file__).resolve().parents[4]
KEYS_FILE = REPO / "roles" / "slurm" / "vars" / "main" / "slurm_conf_keys.yml"
RESTART_KEYS = yaml.safe_load(KEYS_FILE.read_text())["__slurm_conf_restart_keys"]
# Written by hand in the shape roles/slurm/templates/slurm.conf.j2 renders.
SLURM_CONF = (REPO / "tests" / "unit" / "fixtures" / "slurm.conf.handwritten.txt").read_text()
BOTH = ["slurmctld", "slurmd"]
RELEASES = ("22.05", "24.11")


def edit(text, old, new):
    """Replace one line part that must be there, so a case cannot pass by editing nothing."""
    assert text.count(old) == 1, f"{old!r} is not in the slurm.conf fixture exactly once"
    return text.replace(old, new)


def restarts(new_text, release, old_text=SLURM_CONF):
    return slurm_conf_restarts(old_text, new_text, RESTART_KEYS[release])


NODE03 = "NodeName=node03 CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=1750"
# (case id, changed slurm.conf, {release: daemons to restart})
CASES = [
    ("partition MaxTime", edit(SLURM_CONF, "MaxTime=7-00:00:00", "MaxTime=2-00:00:00"),
     {"22.05": [], "24.11": []}),
    ("partition added", SLURM_CONF + "PartitionName=debug Nodes=node01 MaxTime=30 State=UP\n",
     {"22.05": [], "24.11": []}),
    # 22.05 notes the restart under SchedulerParameters=no_backup_scheduling; the table is per key.
    ("SchedulerParameters", edit(SLURM_CONF, "bf_interval=30", "bf_interval=60"),
     {"22.05": ["slurmctld"], "24.11": []}),
    ("SelectTypeParameters", edit(SLURM_CONF, "CR_Core_Memory", "CR_CPU_Memory"),
     {"22.05": ["slurmctld"], "24.11": []}),
    ("SelectType", edit(SLURM_CONF, "select/cons_tres", "select/linear"),
     {"22.05": BOTH, "24.11": []}),
    ("AuthType", edit(SLURM_CONF, "AuthType=auth/munge", "AuthType=auth/slurm"),
     {"22.05": BOTH, "24.11": BOTH}),
    ("SlurmctldPort", edit(SLURM_CONF, "SlurmctldPort=6817", "SlurmctldPort=6817-6818"),
     {"22.05": ["slurmctld"], "24.11": ["slurmctld"]}),
    # 22.05 asks for a slurmctld restart; 24.11 for a restart of the daemon that listens.
    ("SlurmdPort", edit(SLURM_CONF, "SlurmdPort=6818", "SlurmdPort=6828"),
     {"22.05": ["slurmctld"], "24.11": ["slurmd"]}),
    ("GresTypes removed", edit(SLURM_CONF, "GresTypes=gpu\n", ""),
     {"22.05": BOTH, "24.11": []}),
    ("ProctrackType", edit(SLURM_CONF, "proctrack/cgroup", "proctrack/linuxproc"),
     {"22.05": ["slurmctld"], "24.11": []}),
    ("TaskPlugin", edit(SLURM_CONF, "TaskPlugin=task/affinity,task/cgroup", "TaskPlugin=task/cgroup"),
     {"22.05": [], "24.11": []}),
    ("MaxJobCount added", SLURM_CONF + "MaxJobCount=20000\n",
     {"22.05": ["slurmctld"], "24.11": []}),
    ("SlurmdTimeout", edit(SLURM_CONF, "SlurmdTimeout=300", "SlurmdTimeout=600"),
     {"22.05": [], "24.11": []}),
    ("node added", edit(edit(SLURM_CONF, "Nodes=node[01-02]", "Nodes=node[01-03]"),
                        "State=UNKNOWN\n", f"State=UNKNOWN\n{NODE03} State=UNKNOWN\n"),
     {"22.05": BOTH, "24.11": []}),
    ("node removed", edit(edit(SLURM_CONF, "NodeName=node[01-02]", "NodeName=node01"),
                          "Nodes=node[01-02]", "Nodes=node01"),
     {"22.05": BOTH, "24.11": []}),
    ("node memory", edit(SLURM_CONF, "RealMemory=1750", "RealMemory=1700"),
     {"22.05": BOTH, "24.11": []}),
    ("node and scheduler",
     edit(edit(SLURM_CONF, "RealMemory=1750", "RealMemory=1700"), "bf_interval=30", "bf_interval=60"),
     {"22.05": BOTH, "24.11": []}),
]
SAME = [
    ("comment only", edit(SLURM_CONF, "# Compute nodes,", "# The compute nodes,") + "# a trailing comment\n"),
    ("comment after a value", edit(SLURM_CONF, "SlurmdTimeout=300", "SlurmdTimeout=300  # five minutes")),
    ("blank lines", SLURM_CONF.replace("\n", "\n\n")),
    ("key case", edit(edit(SLURM_CONF, "SelectTypeParameters=", "selecttypeparameters="),
                      "CPUs=2", "cpus=2")),
    ("line order", "\n".join(sorted(SLURM_CONF.splitlines(), reverse=True)) + "\n"),
    ("quotes", edit(edit(SLURM_CONF, 'MailProg="/usr/bin/mail"', "MailProg=/usr/bin/mail"),
                    "ClusterName=hpc", 'ClusterName="hpc"')),
    ("continuation line", edit(SLURM_CONF, " RealMemory=1750", " \\\n  RealMemory=1750")),
    ("node line split", edit(SLURM_CONF, "NodeName=node[01-02] CPUs=2",
                             "NodeName=node02 CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 "
                             "RealMemory=1750 State=UNKNOWN\nNodeName=node01 CPUs=2")),
    ("node defaults", edit(SLURM_CONF, "NodeName=node[01-02] CPUs=2 Boards=1",
                           "NodeName=DEFAULT CPUs=2 Boards=1\nNodeName=node[01-02]")),
]


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize(("new_text", "expected"), [pytest.param(text, want, id=name) for name, text, want in CASES])
def test_restarts_follow_the_table(new_text, expected, release):
    assert restarts(new_text, release) == expected[release]


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("new_text", [pytest.param(text, id=name) for name, text in SAME])
def test_unchanged_data_needs_nothing(new_text, release):
    assert restarts(new_text, release) == []
    assert slurm_conf_changes(SLURM_CONF, new_text) == {"global": [], "nodes": [], "other": []}


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("old_text", [None, "", "\n  \n"])
def test_first_start_starts_both(old_text, release):
    assert restarts(SLURM_CONF, release, old_text=old_text) == BOTH


def test_identical_text_needs_nothing():
    for release in RELEASES:
        assert restarts(SLURM_CONF, release) == []


def test_table_from_the_man_pages():
    """The generated data, spot-checked against what slurm.conf(5) says in each release."""
    old, new = RESTART_KEYS["22.05"], RESTART_KEYS["24.11"]
    assert old["nodes"] == BOTH
    assert new["nodes"] == []  # "require restarting or reconfiguring all slurmctld and slurmd daemons"
    for key in ("SelectType", "GresTypes", "PluginDir", "SwitchType", "AuthType"):
        assert key in old["slurmctld"] and key in old["slurmd"], key
    assert "CoreSpecPlugin" in old["slurmd"] and "CoreSpecPlugin" not in old["slurmctld"]
    for key in ("SelectTypeParameters", "SchedulerType", "SchedulerParameters", "SlurmctldParameters",
                "StateSaveLocation", "ProctrackType", "MaxNodeCount", "SlurmdPort"):
        assert key in old["slurmctld"] and key not in old["slurmd"], key
    assert new == {"slurmctld": ["AuthType", "SlurmctldPort"], "slurmd": ["AuthType", "SlurmdPort"], "nodes": []}
    known = yaml.safe_load(KEYS_FILE.read_text())["__slurm_conf_known_keys"]
    for release, table in RESTART_KEYS.items():
        assert set(table["slurmctld"] + table["slurmd"]) <= set(known[release]["global"]), release


def test_include_is_a_global_key():
    with_include = SLURM_CONF + "Include /etc/slurm/extra.conf\n"
    assert slurm_conf_changes(SLURM_CONF, with_include)["global"] == ["include"]
    assert restarts(with_include, "22.05") == []
    moved = edit(with_include, "Include /etc/slurm/extra.conf", "include   /etc/slurm/other.conf")
    assert slurm_conf_changes(with_include, moved)["global"] == ["include"]


def test_quoted_value_with_spaces_is_one_value():
    quoted = SLURM_CONF + 'SlurmctldPidFile="/run/slurm ctl/slurmctld.pid" SlurmdUser=root\n'
    assert slurm_conf_changes(SLURM_CONF, quoted)["global"] == ["slurmctldpidfile", "slurmduser"]
    changed = edit(quoted, "/run/slurm ctl/", "/run/slurm  ctl/")
    assert slurm_conf_changes(quoted, changed)["global"] == ["slurmctldpidfile"]


def test_changes_name_what_differs():
    new = edit(edit(edit(SLURM_CONF, "RealMemory=1750", "RealMemory=1700"), "bf_interval=30", "bf_interval=60"),
               "MaxTime=7-00:00:00", "MaxTime=1-00:00:00")
    assert slurm_conf_changes(SLURM_CONF, new) == {
        "global": ["schedulerparameters"], "nodes": ["node01", "node02"], "other": ["partitionname=main"]}
    assert slurm_conf_changes(None, "ClusterName=x\n")["global"] == ["clustername"]


def test_node_addresses_belong_to_their_nodes():
    together = "NodeName=n[1-2] NodeAddr=10.0.0.[1-2] CPUs=2\n"
    apart = "NodeName=n2 NodeAddr=10.0.0.2 CPUs=2\nNodeName=n1 NodeAddr=10.0.0.1 CPUs=2\n"
    assert slurm_conf_changes(together, apart)["nodes"] == []
    swapped = "NodeName=n2 NodeAddr=10.0.0.1 CPUs=2\nNodeName=n1 NodeAddr=10.0.0.2 CPUs=2\n"
    assert slurm_conf_changes(together, swapped)["nodes"] == ["n1", "n2"]


def test_node_defaults_apply_to_later_lines_only():
    before = "NodeName=DEFAULT CPUs=4\nNodeName=n1\nNodeName=DEFAULT CPUs=8\nNodeName=n2\n"
    after = "NodeName=DEFAULT CPUs=4\nNodeName=n1\nNodeName=n2\nNodeName=DEFAULT CPUs=8\n"
    assert slurm_conf_changes(before, after)["nodes"] == ["n2"]
    assert slurm_conf_restarts(before, after, RESTART_KEYS["22.05"]) == BOTH


@pytest.mark.parametrize(("old_text", "new_text"), [
    (5, SLURM_CONF), (SLURM_CONF, None), (SLURM_CONF, ["ClusterName=x"]), (b"ClusterName=x", SLURM_CONF),
])
def test_non_string_input_is_refused(old_text, new_text):
    with pytest.raises(AnsibleFilterError, match=r"slurm_conf_restarts: (old|new)_text must be the text of slurm.conf"):
        slurm_conf_restarts(old_text, new_text, RESTART_KEYS["22.05"])


def test_unreadable_line_is_refused():
    with pytest.raises(AnsibleFilterError, match=r"cannot read 'junk' in slurm.conf line"):
        restarts(SLURM_CONF + "ClusterName=x junk\n", "22.05")


@pytest.mark.parametrize(("table", "message"), [
    (None, "restart_keys must be a dict"),
    ({"slurmctld": [], "slurmd": []}, "restart_keys.nodes must be a list of strings"),
    ({"slurmctld": "AuthType", "slurmd": [], "nodes": []}, "restart_keys.slurmctld must be a list of strings"),
    ({"slurmctld": [], "slurmd": [], "nodes": ["slurmdbd"]}, "restart_keys.nodes may name only"),
])
def test_bad_restart_table_is_refused(table, message):
    with pytest.raises(AnsibleFilterError, match=message):
        slurm_conf_restarts(SLURM_CONF, SLURM_CONF, table)


def test_table_keys_match_case_insensitively():
    new = edit(SLURM_CONF, "SelectTypeParameters=CR_Core_Memory", "selecttypeparameters=CR_CPU")
    assert slurm_conf_restarts(SLURM_CONF, new, {"slurmctld": ["SELECTTYPEPARAMETERS"], "slurmd": [],
                                                 "nodes": []}) == ["slurmctld"]


def test_filter_module_exposes_the_filters():
    assert FilterModule().filters() == {"slurm_conf_restarts": slurm_conf_restarts,
                                        "slurm_conf_changes": slurm_conf_changes}
