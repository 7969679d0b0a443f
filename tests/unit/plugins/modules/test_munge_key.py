"""hpc.slurm.munge_key on a real file system: the key is private from its first byte, a failed
write leaves nothing behind, and no result carries the key or anything derived from it."""
import base64
import grp
import hashlib
import json
import os
import pwd
import stat

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.hpc.slurm.plugins.modules import munge_key

KEY = os.urandom(128)
OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def run(capsys, path, key=KEY, check_mode=False):
    args = {"path": str(path), "content_base64": base64.b64encode(key).decode(), "owner": OWNER, "group": GROUP,
            "_ansible_check_mode": check_mode}
    with patch_module_args(args), pytest.raises(SystemExit):
        munge_key.main()
    out = capsys.readouterr().out
    for form in (base64.b64encode(key).decode()[:16], hashlib.sha256(key).hexdigest(), hashlib.md5(key).hexdigest(),
                 hashlib.sha1(key).hexdigest()):
        assert form not in out
    return json.loads(out)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_key_is_written_0400_and_a_rerun_changes_nothing(tmp_path, capsys):
    path = tmp_path / "munge.key"
    assert run(capsys, path) == {"changed": True, "key": "differs", "invocation": {"module_args": {
        "path": str(path), "content_base64": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", "owner": OWNER, "group": GROUP}}}
    assert path.read_bytes() == KEY and mode(path) == 0o400
    assert os.listdir(tmp_path) == ["munge.key"]
    assert run(capsys, path)["changed"] is False


def test_other_key_is_replaced_and_check_mode_only_reports(tmp_path, capsys):
    path = tmp_path / "munge.key"
    path.write_bytes(b"old" * 20)
    result = run(capsys, path, check_mode=True)
    assert (result["changed"], result["key"]) == (True, "differs")
    assert path.read_bytes() == b"old" * 20
    assert run(capsys, path)["key"] == "differs"
    assert path.read_bytes() == KEY and mode(path) == 0o400


def test_same_key_with_a_loose_mode_gets_its_mode_back(tmp_path, capsys):
    path = tmp_path / "munge.key"
    path.write_bytes(KEY)
    path.chmod(0o644)
    result = run(capsys, path)
    assert (result["changed"], result["key"]) == (True, "matches")
    assert mode(path) == 0o400


def test_the_temporary_file_is_private_before_the_first_byte(tmp_path, monkeypatch):
    """Every write lands in a file that is already 0400: the mode comes from open(), not a later chmod."""
    seen = []
    real_write = os.write

    def watching_write(fd, data):
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)
    monkeypatch.setattr(munge_key.os, "write", watching_write)
    munge_key.write_key(str(tmp_path / "munge.key"), KEY, os.getuid(), os.getgid())
    assert seen and set(seen) == {0o400}


def test_a_failed_write_leaves_no_temporary_file_and_the_old_key(tmp_path, monkeypatch):
    path = tmp_path / "munge.key"
    path.write_bytes(b"old" * 20)

    def failing_fsync(fd):
        raise OSError("disk gone")
    monkeypatch.setattr(munge_key.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk gone"):
        munge_key.write_key(str(path), KEY, os.getuid(), os.getgid())
    assert os.listdir(tmp_path) == ["munge.key"]
    assert path.read_bytes() == b"old" * 20


@pytest.mark.parametrize(("content", "message"), [("not base64!", "not valid base64"), ("", "empty key")])
def test_bad_content_is_refused_without_echoing_it(tmp_path, capsys, content, message):
    args = {"path": str(tmp_path / "k"), "content_base64": content, "owner": OWNER, "group": GROUP}
    with patch_module_args(args), pytest.raises(SystemExit):
        munge_key.main()
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] and message in result["msg"]
    assert not (tmp_path / "k").exists()
