"""roles/apptainer/files/root_only_paths.py: which directories on the way to a build or Go
directory someone other than root could change."""
import importlib.util
import json
import os
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "roles/apptainer/files/root_only_paths.py"
spec = importlib.util.spec_from_file_location("root_only_paths", SCRIPT)
root_only_paths = importlib.util.module_from_spec(spec)
spec.loader.exec_module(root_only_paths)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="ownership by root is what is checked")


@pytest.fixture
def root_only(tmp_path):
    """A root-owned 0755 directory; its own parents (pytest's tmp under /tmp) are not the subject."""
    base = tmp_path / "base"
    base.mkdir(mode=0o755)
    return base


def test_chain_lists_every_directory_from_the_root():
    assert root_only_paths.chain("/var/lib/hpc-slurm/apptainer") == [
        "/", "/var", "/var/lib", "/var/lib/hpc-slurm", "/var/lib/hpc-slurm/apptainer"]


@pytest.mark.parametrize("path, culprit", [
    ("/var/tmp/hpc-slurm-apptainer", "/var/tmp"),
    ("/tmp/go-1.26", "/tmp"),
])
def test_a_path_under_a_world_writable_directory_is_named(path, culprit):
    found = root_only_paths.problems("apptainer_build_dir", path)
    assert {"setting": "apptainer_build_dir", "path": culprit,
            "problem": "is writable by users other than root (mode 1777)"} in found


def test_a_root_only_directory_and_missing_children_are_fine(root_only):
    assert root_only_paths.problem_of(str(root_only)) is None
    assert root_only_paths.problem_of(str(root_only / "not" / "yet")) is None


def test_a_directory_another_user_owns_is_named(root_only):
    seeded = root_only / "build"
    seeded.mkdir(mode=0o700)
    os.chown(seeded, 1234, 1234)
    assert root_only_paths.problem_of(str(seeded)) == "is owned by uid 1234, not root"


def test_a_group_writable_directory_is_named(root_only):
    shared = root_only / "shared"
    shared.mkdir()
    shared.chmod(0o775)
    assert root_only_paths.problem_of(str(shared)) == "is writable by users other than root (mode 0775)"


def test_a_symbolic_link_into_var_tmp_is_followed(root_only):
    (root_only / "link").symlink_to("/var/tmp")
    found = root_only_paths.problems("apptainer_build_dir", str(root_only / "link" / "build"))
    assert "/var/tmp" in [entry["path"] for entry in found]


@pytest.mark.parametrize("path", ["relative/dir", "/var/lib/hpc-slurm/../../tmp/x", "/var/./tmp"])
def test_relative_and_dotted_paths_are_refused(path):
    assert root_only_paths.problems("apptainer_go_dir", path) == [
        {"setting": "apptainer_go_dir", "path": path, "problem": "is not an absolute path without . or .. parts"}]


def test_main_prints_json_for_every_setting(capsys):
    assert root_only_paths.main(["root_only_paths.py", "apptainer_build_dir=/var/tmp/x", "apptainer_go_dir=/tmp/go"]) == 0
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert [(entry["setting"], entry["path"]) for entry in problems] == [
        ("apptainer_build_dir", "/var/tmp"), ("apptainer_go_dir", "/tmp")]
    assert root_only_paths.main(["root_only_paths.py", "no-equals-sign"]) == 2
