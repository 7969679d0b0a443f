"""hpc.slurm.config_files: whole module runs on temporary files."""
import grp
import json
import os
import pwd
import stat

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.hpc.slurm.plugins.modules import config_files

OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def run_module(files, capsys, **flags):
    args = {"files": [{"owner": OWNER, "group": GROUP, **spec} for spec in files], **flags}
    with patch_module_args(args), pytest.raises(SystemExit) as ended:
        config_files.main()
    return ended.value.code, json.loads(capsys.readouterr().out)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_are_written_with_their_mode_and_no_backup(tmp_path, capsys):
    conf, cgroup = tmp_path / "slurm.conf", tmp_path / "cgroup.conf"
    code, result = run_module([{"dest": str(conf), "content": "ClusterName=a\n", "mode": "0640"},
                               {"dest": str(cgroup), "content": "CgroupPlugin=autodetect\n"}], capsys)
    assert code == 0 and result["changed"] is True
    assert conf.read_text() == "ClusterName=a\n" and mode(conf) == 0o640
    assert cgroup.read_text() == "CgroupPlugin=autodetect\n" and mode(cgroup) == 0o644
    assert result["files"] == [{"dest": str(conf), "changed": True}, {"dest": str(cgroup), "changed": True}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cgroup.conf", "slurm.conf"]


def test_a_changed_file_keeps_the_old_text_in_a_backup_and_the_same_one_is_left_alone(tmp_path, capsys):
    conf, cgroup = tmp_path / "slurm.conf", tmp_path / "cgroup.conf"
    conf.write_text("ClusterName=old\n")
    cgroup.write_text("same\n")
    conf.chmod(0o600)
    cgroup.chmod(0o644)
    code, result = run_module([{"dest": str(conf), "content": "ClusterName=new\n"},
                               {"dest": str(cgroup), "content": "same\n"}], capsys)
    assert code == 0 and result["changed"] is True
    written, kept = result["files"]
    assert written["changed"] is True and kept == {"dest": str(cgroup), "changed": False}
    assert conf.read_text() == "ClusterName=new\n" and mode(conf) == 0o644
    backup = tmp_path / os.path.basename(written["backup_file"])
    assert backup.read_text() == "ClusterName=old\n"
    assert backup.name.startswith("slurm.conf.") and backup.name.endswith("~")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".hpc-slurm-")]


def test_a_rerun_changes_nothing_and_makes_no_backup(tmp_path, capsys):
    conf = tmp_path / "slurm.conf"
    run_module([{"dest": str(conf), "content": "ClusterName=a\n"}], capsys)
    code, result = run_module([{"dest": str(conf), "content": "ClusterName=a\n"}], capsys)
    assert code == 0 and result["changed"] is False
    assert [p.name for p in tmp_path.iterdir()] == ["slurm.conf"]


def test_a_wrong_mode_alone_is_mended_without_a_backup(tmp_path, capsys):
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=a\n")
    conf.chmod(0o666)
    code, result = run_module([{"dest": str(conf), "content": "ClusterName=a\n"}], capsys)
    assert code == 0 and result["files"] == [{"dest": str(conf), "changed": True}]
    assert mode(conf) == 0o644 and [p.name for p in tmp_path.iterdir()] == ["slurm.conf"]


def test_check_mode_reports_and_diffs_without_writing(tmp_path, capsys):
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=old\n")
    code, result = run_module([{"dest": str(conf), "content": "ClusterName=new\n"}], capsys,
                              _ansible_check_mode=True, _ansible_diff=True)
    assert code == 0 and result["changed"] is True
    assert conf.read_text() == "ClusterName=old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["slurm.conf"]
    assert result["diff"] == [{"before_header": str(conf), "after_header": str(conf),
                               "before": "ClusterName=old\n", "after": "ClusterName=new\n"}]
