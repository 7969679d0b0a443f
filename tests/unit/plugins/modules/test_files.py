"""hpc.slurm.files: whole module runs on temporary files and directories."""
import grp
import base64
import json
import os
import pwd
import stat

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.hpc.slurm.plugins.modules import files as files_module

OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def run_module(files, capsys, **flags):
    args = {"files": [{"owner": OWNER, "group": GROUP, **spec} for spec in files], **flags}
    with patch_module_args(args), pytest.raises(SystemExit) as ended:
        files_module.main()
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
    assert result["files"] == [{"dest": str(conf), "changed": True, "written": True},
                               {"dest": str(cgroup), "changed": True, "written": True}]
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
    assert written["changed"] is True and kept == {"dest": str(cgroup), "changed": False, "written": False}
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
    assert code == 0 and result["files"] == [{"dest": str(conf), "changed": True, "written": False}]
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


def test_a_missing_directory_is_made_and_a_wrong_mode_mended_then_left_alone(tmp_path, capsys):
    made, wrong = tmp_path / "log" / "slurm", tmp_path / "state"
    wrong.mkdir(mode=0o755)
    specs = [{"dest": str(made), "state": "directory", "mode": "0750"},
             {"dest": str(wrong), "state": "directory", "mode": "0700"}]
    code, result = run_module(specs, capsys)
    assert code == 0 and [f["changed"] for f in result["files"]] == [True, True]
    assert made.is_dir() and mode(made) == 0o750 and mode(wrong) == 0o700
    code, result = run_module(specs, capsys)
    assert code == 0 and result["changed"] is False


def test_binary_content_without_backup_and_attributes_alone_without_content(tmp_path, capsys):
    key, other = tmp_path / "munge.key", tmp_path / "other.key"
    key.write_bytes(b"old")
    other.write_bytes(b"\x00kept")
    other.chmod(0o600)
    secret = bytes(range(256))
    code, result = run_module([
        {"dest": str(key), "content_base64": base64.b64encode(secret).decode(), "backup": False, "mode": "0400"},
        {"dest": str(other), "mode": "0400"}], capsys)
    assert code == 0
    assert result["files"] == [{"dest": str(key), "changed": True, "written": True},
                               {"dest": str(other), "changed": True, "written": False}]
    assert key.read_bytes() == secret and mode(key) == 0o400
    assert other.read_bytes() == b"\x00kept" and mode(other) == 0o400
    assert sorted(p.name for p in tmp_path.iterdir()) == ["munge.key", "other.key"]


def test_what_cannot_be_put_in_place_is_refused_by_name(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file")
    code, result = run_module([{"dest": str(tmp_path / "taken"), "state": "directory"}], capsys)
    assert code == 1 and result["msg"] == f"{tmp_path / 'taken'} is not a directory; move it away, then run again"
    code, result = run_module([{"dest": str(tmp_path / "absent.key"), "mode": "0400"}], capsys)
    assert code == 1 and result["msg"] == f"{tmp_path / 'absent.key'} does not exist and no content was given for it"
    code, result = run_module([{"dest": str(tmp_path), "content": "x"}], capsys)
    assert code == 1 and "is a directory, not a file" in result["msg"]
