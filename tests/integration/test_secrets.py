"""A user-supplied munge key reaches every host, restarts munged once, and never the output."""
import base64
import hashlib
import re
import secrets

import pytest

pytestmark = pytest.mark.reruns


def munge_restarts(stdout):
    """Hosts on which the munge role restarted munged."""
    sections = re.split(r"^(?:TASK|RUNNING HANDLER) \[", stdout, flags=re.M)
    restart = [s for s in sections if s.startswith("hpc.slurm.munge : Restart munged")]
    return sum(len(re.findall(r"^changed: \[", s, re.M)) for s in restart)


def test_user_key_is_installed_everywhere_and_never_printed(run_playbook, all_hosts, controller):
    key = secrets.token_urlsafe(72)
    first = run_playbook("site.yml", "-vvv", "--diff", extra_vars={"munge_key": key})
    output = first.stdout + first.stderr
    assert first.returncode == 0, output[-3000:]
    digest = hashlib.sha256(key.encode()).hexdigest()
    for form in (key, base64.b64encode(key.encode()).decode(), key[:24], digest, digest[:16],
                 hashlib.md5(key.encode()).hexdigest(), hashlib.sha1(key.encode()).hexdigest()):
        assert form not in output
    assert munge_restarts(first.stdout) == 1
    for host in all_hosts:
        assert host.check_output("sha256sum /etc/munge/munge.key").split()[0] == digest
        assert host.file("/etc/munge/munge.key").mode == 0o400
    credential = controller.check_output("munge --no-input")
    for host in all_hosts:
        assert host.run(f"echo '{credential}' | unmunge").rc == 0

    again = run_playbook("site.yml", extra_vars={"munge_key": key})
    assert again.returncode == 0, again.stdout[-3000:]
    assert munge_restarts(again.stdout) == 0
    assert all(changed == "0" for changed in re.findall(r"changed=(\d+)", again.stdout))


def test_a_slurm_conf_password_is_in_no_output(run_playbook, controller):
    """slurm.conf keys that hold passwords: written, but never in -vvv or --diff output."""
    password = "pw-" + secrets.token_hex(12)
    try:
        result = run_playbook("site.yml", "-vvv", "--diff", extra_vars={"slurm_config_overrides": {"JobCompPass": password}})
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-3000:]
        assert f"JobCompPass={password}" in controller.file("/etc/slurm/slurm.conf").content_string
        assert password not in output
    finally:
        restored = run_playbook("site.yml")
        assert restored.returncode == 0, restored.stdout[-3000:]
    assert password not in controller.file("/etc/slurm/slurm.conf").content_string
