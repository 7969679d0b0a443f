"""hpc.slurm.slurm_accounting as Ansible runs it: each recorded step (tests/unit/fixtures/accounting,
real sacctmgr on Slurm 22.05 and 24.11) replayed through main(), with only run_command replaced."""
import os
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hpc.slurm.plugins.modules import slurm_accounting
from module_harness import put_commands_on_path, run_main

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "accounting"
VERSIONS = sorted(path.stem for path in FIXTURES.glob("debian*.yaml"))
STEPS = [(version, entry) for version in VERSIONS
         for entry in yaml.safe_load((FIXTURES / f"{version}.yaml").read_text())["steps"]]


def run_module(args, capsys):
    return run_main(slurm_accounting, args, capsys)


@pytest.fixture
def slurm_on_path(tmp_path, monkeypatch):
    return put_commands_on_path(tmp_path, monkeypatch, ("sacctmgr", "scontrol"))


class Replay:
    """Answers run_command with the recorded runs, in order, each checked against its argv."""

    def __init__(self, runs):
        self.pending = list(runs)
        self.calls = []

    def run_command(self, args, **kwargs):
        self.calls.append(list(args))
        assert kwargs["environ_update"]["LC_ALL"] == "C"
        assert self.pending, "unexpected command %s" % args
        run = self.pending.pop(0)
        assert [os.path.basename(args[0])] + list(args[1:]) == run["cmd"]
        return run["rc"], run["stdout"], run["stderr"]


def replay(monkeypatch, runs):
    player = Replay(runs)
    monkeypatch.setattr(AnsibleModule, "run_command", player.run_command)
    return player


def is_show(run):
    return run["cmd"][0] == "scontrol" or "show" in run["cmd"][1:4]


@pytest.mark.parametrize("version, entry", STEPS, ids=["%s-%s" % (v, e["name"].replace(" ", "_")) for v, e in STEPS])
def test_recorded_step_replays_through_the_module(version, entry, monkeypatch, capsys, slurm_on_path):
    player = replay(monkeypatch, entry["runs"])
    status, result = run_module(entry["params"], capsys)
    assert player.pending == []
    planned = [run for run in entry["runs"] if not is_show(run)]
    if planned and planned[-1]["rc"] != 0:
        failed = planned[-1]
        assert status == 1 and result["failed"]
        assert result["rc"] == failed["rc"] and [os.path.basename(result["cmd"][0])] + result["cmd"][1:] == failed["cmd"]
        assert result["stdout"] == failed["stdout"] and result["stderr"] == failed["stderr"]
        for line in (failed["stdout"] + failed["stderr"]).splitlines():  # Slurm's own words, in full
            assert line.strip() in result["msg"]
        return
    assert status == 0, result
    assert result["changed"] is bool(planned)
    assert [[os.path.basename(argv[0])] + argv[1:] for argv in result["commands"]] == [run["cmd"] for run in planned]
    assert result["cluster"] == "reccluster"


@pytest.mark.parametrize("version", VERSIONS)
def test_check_mode_runs_only_the_show_commands(version, monkeypatch, capsys, slurm_on_path):
    (entry,) = [e for v, e in STEPS if v == version and e["name"] == "change"]
    shows = [run for run in entry["runs"] if is_show(run)]
    player = replay(monkeypatch, shows)
    status, result = run_module(dict(entry["params"], _ansible_check_mode=True, _ansible_diff=True), capsys)
    assert status == 0 and result["changed"]
    assert all("show" in argv[1:4] for argv in player.calls)
    assert len(result["commands"]) == len(entry["runs"]) - len(shows)
    before, after = result["diff"]["before"], result["diff"]["after"]
    assert before["accounts"]["physics"]["GrpTRES"] == "cpu=4,mem=2048M" and before["accounts"]["physics"]["MaxJobs"] == "1"
    assert after["accounts"]["physics"]["GrpTRES"] == "cpu=4" and "MaxJobs" not in after["accounts"]["physics"]
    assert after["accounts"]["physics"]["MaxWall"] == "04:00:00"
    assert after["qos"]["short"]["Flags"] == "DenyOnLimit,NoReserve"
    assert before["users"]["alice@physics"]["MaxJobs"] == "2" and "MaxJobs" not in after["users"]["alice@physics"]
    assert set(before["accounts"]) == {"physics", "science"}  # what is declared, nothing else


def test_bad_declaration_fails_before_any_command(monkeypatch, capsys, slurm_on_path):
    player = replay(monkeypatch, [])
    status, result = run_module({"accounts": [{"name": "a", "parent": "nosuch", "limits": {"MaxJob": 1}}]}, capsys)
    assert status == 1 and player.calls == []
    assert "parent 'nosuch' is not declared" in result["msg"] and "unknown limit MaxJob" in result["msg"]
    assert len(result["problems"]) == 2


def test_missing_sacctmgr_is_named(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    status, result = run_module({"cluster": "c"}, capsys)
    assert status == 1 and 'required executable "sacctmgr"' in result["msg"]
