"""hpc.slurm.files_out_of_place against host_state results recorded on a converged node."""
import base64
import hashlib

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.hpc.slurm.plugins.filter.host_state import files_out_of_place

CONF = "ClusterName=test\n"
FOUND = {
    "/var/log/slurm": {"exists": True, "type": "directory", "owner": "slurm", "group": "slurm", "mode": "0750"},
    "/var/lib/slurm/slurmd": {"exists": True, "type": "directory", "owner": "slurm", "group": "slurm", "mode": "0755"},
    "/etc/slurm/slurm.conf": {"exists": True, "type": "file", "owner": "root", "group": "root", "mode": "0644",
                              "sha256": hashlib.sha256(CONF.encode()).hexdigest()},
    "/etc/munge/munge.key": {"exists": True, "type": "file", "owner": "munge", "group": "munge", "mode": "0400",
                             "sha256": hashlib.sha256(b"\x00key").hexdigest()},
    "/etc/slurm/cgroup.conf": {"exists": False},
}


def test_only_what_differs_is_out_of_place():
    log = {"dest": "/var/log/slurm", "state": "directory", "owner": "slurm", "group": "slurm", "mode": "0750"}
    spool = {"dest": "/var/lib/slurm/slurmd", "state": "directory"}
    conf = {"dest": "/etc/slurm/slurm.conf", "content": CONF}
    cgroup = {"dest": "/etc/slurm/cgroup.conf", "content": "CgroupPlugin=autodetect\n"}
    assert files_out_of_place([log, spool, conf, cgroup], FOUND) == [spool, cgroup]
    assert files_out_of_place([{**conf, "content": "ClusterName=other\n"}], FOUND) != []
    assert files_out_of_place([{**conf, "mode": "0640"}], FOUND) != []


def test_binary_content_and_attributes_alone():
    key = {"dest": "/etc/munge/munge.key", "owner": "munge", "group": "munge", "mode": "0400"}
    assert files_out_of_place([key], FOUND) == []
    assert files_out_of_place([{**key, "content_base64": base64.b64encode(b"\x00key").decode()}], FOUND) == []
    assert files_out_of_place([{**key, "content_base64": base64.b64encode(b"other").decode()}], FOUND) != []


def test_a_path_the_look_did_not_see_is_out_of_place():
    entry = {"dest": "/etc/elsewhere", "content": ""}
    assert files_out_of_place([entry], FOUND) == [entry]
    with pytest.raises(AnsibleFilterError, match="host_state's paths"):
        files_out_of_place([entry], None)
