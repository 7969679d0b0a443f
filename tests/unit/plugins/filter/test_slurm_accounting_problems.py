"""hpc.slurm.slurm_accounting_problems: the check play's filter, as Ansible loads it."""
import pytest
from ansible_collections.hpc.slurm.plugins.filter.slurm_accounting import FilterModule, slurm_accounting_problems
from ansible_collections.hpc.slurm.plugins.module_utils import slurm_accounting

GOOD_QOS = [{"name": "short", "limits": {"MaxWall": "01:00:00", "MaxJobsPerUser": 2, "GrpTRES": "cpu=8",
                                          "Priority": 10, "Flags": "DenyOnLimit"}}]
GOOD_ACCOUNTS = [
    {"name": "science"},
    {"name": "physics", "parent": "science", "users": ["alice", "bob"],
     "limits": {"MaxJobs": 1, "MaxSubmitJobs": 10, "MaxWall": "02:00:00", "GrpTRES": "cpu=4,mem=2G",
                "QOS": "normal,short", "DefaultQOS": "normal", "Fairshare": 1}},
]
GOOD_USERS = [{"name": "alice", "account": "physics", "default_account": "physics", "limits": {"MaxJobs": 2}}]


def test_is_registered_under_its_name():
    assert FilterModule().filters()["slurm_accounting_problems"] is slurm_accounting_problems


def test_the_documented_example_has_no_problems():
    assert slurm_accounting_problems(GOOD_ACCOUNTS, GOOD_QOS, GOOD_USERS) == []
    assert slurm_accounting_problems(GOOD_ACCOUNTS, GOOD_QOS) == []


def test_uses_the_module_utils_tables():
    # One source of truth: the filter's messages come from the module_utils checks.
    assert slurm_accounting_problems([{"name": "a", "limits": {"MaxJob": 1}}], []) == \
        slurm_accounting.problems([{"name": "a", "limits": {"MaxJob": 1}}], [])


@pytest.mark.parametrize("accounts, qos, users, complaint", [
    ({"name": "a"}, [], [], "accounts must be a list of entries"),
    ([], "short", [], "qos must be a list of entries"),
    ([{"name": "a", "limits": {"GrpTRES": "cpu=x"}}], [], [], "account a: limit GrpTRES: 'cpu=x' is not TRES=count"),
    ([{"name": "a", "limits": {"MaxTRES": "mem=2Q"}}], [], [], "account a: limit MaxTRES"),
    ([], [{"name": "q", "limits": {"GraceTime": "soon"}}], [], "qos q: limit GraceTime: 'soon' is not a Slurm time"),
    ([{"name": "a", "limits": {"QOS": "short"}}], [], [], "account a: limit QOS names QOS 'short', which is not declared"),
    ([{"name": "a"}], [], [{"name": "alice", "account": "a", "state": "maybe"}], "users alice: state 'maybe'"),
    ([{"name": "a"}], [], [{"name": "alice", "account": "a", "limits": {"Flags": "x"}}],
     "user alice: unknown limit Flags for an account or user"),
    ([{"name": "a"}], [], [{"name": "alice", "account": "a"}, {"name": "alice", "account": "a"}],
     "users alice in account a: declared twice"),
    ([{"name": "a", "parent": "a"}], [], [], "an account cannot be its own parent"),
])
def test_each_problem_is_named(accounts, qos, users, complaint):
    found = slurm_accounting_problems(accounts, qos, users)
    assert any(complaint in message for message in found), found
