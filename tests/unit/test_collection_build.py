"""`ansible-galaxy collection build` gives a tarball that installs and resolves like the checkout."""
import os
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*cmd, cwd, env=None):
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_built_collection_installs_and_its_playbook_parses(tmp_path):
    run(str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), str(REPO), cwd=tmp_path)
    (tarball,) = tmp_path.glob("hpc-slurm-*.tar.gz")
    names = tarfile.open(tarball).getnames()
    assert "roles/slurm/tasks/main.yml" in names and "plugins/filter/slurm.py" in names
    assert not any(n.startswith(("collections/", ".venv/", ".cache/", ".ci/")) for n in names)

    installed = tmp_path / "installed"
    run(str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--force", "-p", str(installed), str(tarball), cwd=tmp_path)
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")  # not the checkout's, which points at itself
    env = {"ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": str(installed)}
    listing = run(str(BIN / "ansible-playbook"), "-i", "localhost,", "--list-tasks", "hpc.slurm.site", cwd=tmp_path, env=env)
    assert "hpc.slurm.slurm : Install the Slurm packages of this host's groups" in listing
    assert str(installed) in run(str(BIN / "ansible-galaxy"), "collection", "list", "hpc.slurm", cwd=tmp_path, env=env)
