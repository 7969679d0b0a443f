"""Unit tests of the cluster_users filters, against account lines as getent prints them."""

from ansible_collections.hpc.slurm.plugins.filter.cluster_users import (
    cluster_users_conflicts,
    cluster_users_duplicates,
)

# `getent passwd slurm munge alice 64030 64029 6001` on a Debian 13 host where the packages made
# munge with a free system uid before this collection ran.
PASSWD = [
    "slurm:x:64030:64030::/nonexistent:/usr/sbin/nologin",
    "munge:x:100:101::/nonexistent:/usr/sbin/nologin",
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
]


def test_a_name_or_number_declared_twice_is_named_with_its_setting():
    users = [{"name": "alice", "uid": 6001}, {"name": "bob", "uid": "6001"}, {"name": "alice", "uid": 6003}]
    groups = [{"name": "physics", "gid": 6100}, {"name": "chem", "gid": 6100}]
    assert cluster_users_duplicates(users, groups) == [
        "cluster_users_users declares the user name 'alice' more than once.",
        "cluster_users_users gives uid 6001 to more than one user (alice, bob); each needs its own.",
        "cluster_users_groups gives gid 6100 to more than one group (physics, chem); each needs its own.",
    ]


def test_distinct_declarations_pass():
    assert cluster_users_duplicates([{"name": "alice", "uid": 6001}], [{"name": "alice", "gid": 6001}]) == []


def test_a_number_of_another_account_and_an_account_with_other_numbers_are_refused():
    declared = [
        {"name": "slurm", "uid": "64030"},
        {"name": "munge", "uid": 64029, "setting": "cluster_users_munge_uid/_gid"},
        {"name": "carol", "uid": 65534},
    ]
    errors = cluster_users_conflicts(declared, PASSWD, "passwd", "node01", "cluster_users_users")
    assert len(errors) == 2
    assert errors[0].startswith("cluster_users_munge_uid/_gid: the user 'munge' exists on node01 with uid 100, not 64029.")
    assert errors[1] == ("cluster_users_users: uid 65534 of user 'carol' belongs to the user 'nobody' on node01; "
                         "choose a free uid.")


def test_a_fresh_host_has_no_conflicts():
    assert cluster_users_conflicts([{"name": "munge", "gid": 64029}], [], "group", "node01", "cluster_users_groups") == []
