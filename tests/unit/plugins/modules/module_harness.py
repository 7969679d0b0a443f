"""What the module tests share: a module's main() run in this process as Ansible runs it, and
stand-ins for Slurm's commands on PATH (get_bin_path must find them; a replay answers for them)."""
import json

import pytest
from ansible.module_utils.testing import patch_module_args


def run_main(module, args, capsys):
    """Run module.main() with args; returns (exit status, the module's JSON result)."""
    with patch_module_args(args), pytest.raises(SystemExit) as ended:
        module.main()
    return ended.value.code, json.loads(capsys.readouterr().out)


def put_commands_on_path(tmp_path, monkeypatch, names):
    """A PATH of commands that exit 99 if they ever run for real."""
    for name in names:
        command = tmp_path / name
        command.write_text("#!/bin/sh\nexit 99\n")
        command.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    return tmp_path
