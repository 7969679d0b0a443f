"""Unit tests of scripts/extract-slurm-conf-keys.py on hand-written man pages that use the
restart wordings of Debian's slurm.conf(5) for Slurm 22.05 and 24.11."""

import importlib.util
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "unit" / "fixtures"
SLURM_CONF_5 = FIXTURES / "slurm.conf.5.handwritten.txt"
CGROUP_CONF_5 = FIXTURES / "cgroup.conf.5.handwritten.txt"

SCRIPT = REPO / "scripts" / "extract-slurm-conf-keys.py"
spec = importlib.util.spec_from_file_location("extract_slurm_conf_keys", SCRIPT)
extract = importlib.util.module_from_spec(spec)
spec.loader.exec_module(extract)


def page_with(tmp_path, old, new):
    text = SLURM_CONF_5.read_text()
    assert text.count(old) == 1
    path = tmp_path / "slurm.conf.5"
    path.write_text(text.replace(old, new))
    return str(path)


def test_restart_wordings():
    found = extract.slurm_conf_restarts(str(SLURM_CONF_5))
    assert found["slurmctld"] == ["AuthLike", "Both", "BothShort", "CtldDaemon", "CtldListenPort", "CtldOnly",
                                  "Everything", "NestedNote"]
    assert found["slurmd"] == ["AuthLike", "Both", "BothShort", "Everything", "NodeListenPort", "SlurmdOnly"]
    assert found["nodes"] == ["slurmctld", "slurmd"]
    assert found["unexplained"] == []
    assert found["evidence"]["CtldDaemon"] == ["The slurmctld daemon must be restarted"]


def test_known_keys_are_unchanged_by_the_description_reader():
    keys = extract.all_keys(str(SLURM_CONF_5), str(CGROUP_CONF_5))
    assert "some_option" not in keys["global"] and "NestedNote" in keys["global"]
    assert keys["node"] == ["NodeName"] and keys["partition"] == ["PartitionName"]
    assert keys["cgroup"] == ["CgroupPlugin", "ConstrainCores"]


def test_reconfiguring_nodes_is_enough_in_24_11_wording(tmp_path):
    path = page_with(tmp_path, "require restarting both the slurmctld daemon\nand the slurmd daemons.",
                     "require restarting or reconfiguring all slurmctld\nand slurmd daemons.")
    assert extract.slurm_conf_restarts(path)["nodes"] == []


def test_ports_need_no_restart_without_the_listening_note(tmp_path):
    path = page_with(tmp_path, "Changes to TCP listening settings will require a daemon restart.\n", "")
    found = extract.slurm_conf_restarts(path)
    assert "CtldListenPort" not in found["slurmctld"] and "NodeListenPort" not in found["slurmd"]


def test_missing_node_rule_stops(tmp_path):
    path = page_with(tmp_path, "Changes in node configuration", "Edits of node configuration")
    with pytest.raises(SystemExit, match="Changes in node configuration"):
        extract.slurm_conf_restarts(path)


def test_new_wording_stops_the_yaml_command(tmp_path):
    path = page_with(tmp_path, "\\fBPlain\\fR\n", "\\fBPlain\\fR\nA slurmctld restart is required after a change.\n")
    with pytest.raises(SystemExit, match="Plain: A slurmctld restart is required"):
        extract.main(["yaml", "--comment", "test", "22.05", path, str(CGROUP_CONF_5)])


def test_yaml_output(capsys):
    assert extract.main(["yaml", "--comment", "test", "22.05", str(SLURM_CONF_5), str(CGROUP_CONF_5)]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert data["__slurm_conf_known_keys"]["22.05"]["cgroup"] == ["CgroupPlugin", "ConstrainCores"]
    assert data["__slurm_conf_restart_keys"]["22.05"]["nodes"] == ["slurmctld", "slurmd"]
    assert data["__slurm_conf_restart_keys"]["22.05"]["slurmd"][0] == "AuthLike"
