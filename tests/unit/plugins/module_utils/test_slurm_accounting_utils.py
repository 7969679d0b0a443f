"""Unit tests of plugins/module_utils/slurm_accounting.py: normalisers, parsers on real sacctmgr
output (tests/unit/fixtures/accounting, Slurm 22.05 and 24.11), checks and the planner."""
from pathlib import Path

import pytest
import yaml
from ansible_collections.hpc.slurm.plugins.module_utils import slurm_accounting as acct

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "accounting"
VERSIONS = sorted(path.stem for path in FIXTURES.glob("debian*.yaml"))


@pytest.fixture(params=VERSIONS)
def recorded(request):
    return yaml.safe_load((FIXTURES / f"{request.param}.yaml").read_text())


def step(recorded, name):
    (found,) = [entry for entry in recorded["steps"] if entry["name"] == name]
    return found


def shown_state(recorded, name):
    outputs = dict((run["name"][len("show "):], run["stdout"]) for run in step(recorded, name)["runs"]
                   if run["name"].startswith("show "))
    return acct.current_from(outputs)


# --------------------------------------------------------------------------- values

@pytest.mark.parametrize("kind, spellings", [
    (acct.TIME, ["60", "01:00:00", "1:00:00", "0-01:00", "0-1", "60:00"]),
    (acct.TIME, ["1-00:00:00", "1440", "24:00:00", "1-0"]),
    (acct.TIME, [None, "", "UNLIMITED", "-1", "infinite"]),
    (acct.SECONDS, ["120", 120, "00:02:00", "2:00"]),
    (acct.TRES, ["cpu=4,mem=2G", "mem=2048,cpu=4", "MEM=2048M,CPU=4", " cpu=4 , mem=2g", "mem=2097152K,cpu=4"]),
    (acct.TRES, ["mem=1T", "mem=1048576"]),
    (acct.TRES, ["", "-1", "cpu=-1", None]),
    (acct.QOS_LIST, ["normal,short", "short,normal", ["short", "normal"], " normal , short "]),
    (acct.QOS_FLAGS, ["DenyOnLimit,NoReserve", "noreserve,denyonlimit"]),
    (acct.PREEMPT_MODE, ["cluster", "", "-1", None]),
    (acct.PREEMPT_MODE, ["REQUEUE", "requeue"]),
    (acct.COUNT, [2, "2", " 2 "]),
    (acct.COUNT, ["-1", "", None, -1]),
    (acct.FLOAT, ["1", "1.000000", 1.0]),
    (acct.FAIRSHARE, ["-1", 1, "1"]),
])
def test_equal_meanings_normalise_equal(kind, spellings):
    values = [acct.normalise(kind, spelling) for spelling in spellings]
    assert all(value == values[0] for value in values), list(zip(spellings, values))


def test_different_meanings_stay_different():
    assert acct.normalise(acct.TIME, "60") != acct.normalise(acct.SECONDS, "60")
    assert acct.normalise(acct.TRES, "cpu=4") != acct.normalise(acct.TRES, "cpu=4,mem=1")
    assert acct.normalise(acct.TIME, "01:00:00") == 3600
    assert acct.normalise(acct.TRES, "cpu=4,mem=2G,gres/gpu=1") == {"cpu": 4, "mem": 2048, "gres/gpu": 1}


@pytest.mark.parametrize("kind, value, complaint", [
    (acct.TIME, "bogus", "not a Slurm time"),
    (acct.TIME, "1:2:3:4", "not a Slurm time"),
    (acct.TRES, "cpu=", "is not TRES=count"),
    (acct.TRES, "cpu=x", "is not TRES=count"),
    (acct.TRES, "cpu", "is not TRES=count"),
    (acct.TRES, "gpu=1", "generic resources are written gres/gpu"),
    (acct.TRES, "gres=1", "not a TRES name"),
    (acct.TRES, "mem=2X", "is not TRES=count"),
    (acct.TRES, "cpu=2G", "only mem and vmem take a unit"),
    (acct.COUNT, "two", "not a whole number"),
    (acct.COUNT, True, "boolean"),
    (acct.QOS_FLAGS, "DenyOnLimits", "not a QOS flag"),
    (acct.PREEMPT_MODE, "kill", "not a preempt mode"),
    (acct.FAIRSHARE, "half", "whole number or parent"),
])
def test_malformed_values_are_refused(kind, value, complaint):
    with pytest.raises(acct.AccountingError, match=complaint):
        acct.normalise(kind, value)


@pytest.mark.parametrize("kind, current, wanted, text", [
    (acct.TRES, {"cpu": 4, "mem": 2048}, {"cpu": 4}, "cpu=4,mem=-1"),
    (acct.TRES, {"cpu": 4, "mem": 2048}, None, "cpu=-1,mem=-1"),
    (acct.TRES, None, {"mem": 2048}, "mem=2048M"),
    (acct.TIME, 3600, None, "-1"),
    (acct.TIME, None, 90000, "1-01:00:00"),
    (acct.QOS_LIST, frozenset(["short"]), None, ""),
    (acct.PREEMPT_MODE, frozenset(["requeue"]), None, "cluster"),
    (acct.QOS_FLAGS, None, frozenset(["NoReserve", "DenyOnLimit"]), "DenyOnLimit,NoReserve"),
])
def test_change_texts_are_what_sacctmgr_takes(kind, current, wanted, text):
    assert acct.change_text(kind, current, wanted) == text


def test_limit_names_are_case_insensitive_and_aliases_canonical():
    assert acct.canonical_limit_name("association", "maxsubmit") == "MaxSubmitJobs"
    assert acct.canonical_limit_name("association", "QOSLEVEL") == "QOS"
    assert acct.canonical_limit_name("qos", "maxjobspu") == "MaxJobsPerUser"
    assert acct.canonical_limit_name("qos", "MaxJobs") is None  # an association limit only
    assert acct.canonical_limit_name("association", "Flags") is None


# --------------------------------------------------------------------------- parsers

def test_parsers_read_the_recorded_state(recorded):
    state = shown_state(recorded, "create again")
    assert set(state["qos"]) == {"normal", "short", "long"}
    short = state["qos"]["short"]
    assert short["description"] == "jobs of up to one hour"  # sacctmgr stores it in lower case
    assert short["limits"]["MaxWall"] == 3600 and short["limits"]["MaxJobsPerUser"] == 2
    assert short["limits"]["GrpTRES"] == {"cpu": 8, "mem": 2048}
    assert short["limits"]["Flags"] == frozenset(["DenyOnLimit"]) and short["limits"]["Priority"] == 10
    long = state["qos"]["long"]["limits"]
    assert (long["MaxWall"], long["GraceTime"], long["PreemptExemptTime"]) == (172800, 120, 1800)
    physics = state["associations"]["physics"]
    assert physics["parent"] == "science"
    assert physics["limits"]["GrpTRES"] == {"cpu": 4, "mem": 2048} and physics["limits"]["MaxWall"] == 7200
    assert physics["limits"]["QOS"] == frozenset(["normal", "short"]) and physics["limits"]["DefaultQOS"] == "normal"
    assert state["associations"]["science"]["parent"] == "root"
    # WOPLimits: only what the user has of their own, nothing inherited from physics.
    assert state["user_associations"][("bob", "physics")]["limits"]["MaxWall"] is None
    assert state["user_associations"][("alice", "physics")]["limits"]["MaxJobs"] == 2
    assert state["user_associations"][("alice", "physics")]["limits"]["MaxTRESPerNode"] == {"cpu": 1}
    assert state["defaults"] == {"alice": "physics", "bob": "physics", "carol": "science", "root": "root"}
    assert state["accounts"]["science"] == {"description": "all sciences", "organization": "faculty"}


def test_an_empty_database_has_root_and_normal_only(recorded):
    runs = step(recorded, "create")["runs"]
    assert acct.parse_cluster_name(runs[0]["stdout"]) == "reccluster"
    state = acct.current_from(dict((run["name"][5:], run["stdout"]) for run in runs if run["name"].startswith("show ")))
    assert set(state["qos"]) == {"normal"} and set(state["associations"]) == {"root"}
    assert list(state["user_associations"]) == [("root", "root")]


@pytest.mark.parametrize("name, words", [
    ("modify bad time", "Bad MaxWall time format: MaxWall=bogus"),
    ("modify unknown option", "Unknown option: NoSuchLimit=1"),
    ("modify tres without gres/", "no TRES known by type gpu"),
    ("add qos that exists", "Nothing new added."),
])
def test_sacctmgr_words_keep_slurms_message(recorded, name, words):
    (run,) = [run for run in recorded["runs"] if run["name"] == name]
    assert run["rc"] == 1
    assert words in acct.sacctmgr_words(run["stdout"], run["stderr"])


# --------------------------------------------------------------------------- checks

def test_a_good_declaration_has_no_problems(recorded):
    for entry in recorded["steps"]:
        params = entry["params"]
        assert acct.problems(params.get("accounts"), params.get("qos"), params.get("users")) == []


@pytest.mark.parametrize("accounts, qos, users, complaint", [
    ([{"name": "a", "limits": {"MaxJob": 1}}], [], [], "account a: unknown limit MaxJob for an account or user"),
    ([], [{"name": "q", "limits": {"MaxJobs": 1}}], [], "qos q: unknown limit MaxJobs for a QOS"),
    ([{"name": "a", "limits": {"GrpTRES": "cpu="}}], [], [], "account a: limit GrpTRES: 'cpu=' is not TRES=count"),
    ([{"name": "a", "limits": {"GrpTRES": "gpu=1"}}], [], [], "written gres/gpu"),
    ([{"name": "a", "limits": {"MaxWall": "1:2:3:4"}}], [], [], "account a: limit MaxWall: '1:2:3:4' is not a Slurm time"),
    ([{"name": "a"}, {"name": "a"}], [], [], "accounts a: declared twice"),
    ([], [{"name": "q"}, {"name": "q"}], [], "qos q: declared twice"),
    ([{"name": "a", "parent": "b"}], [], [], "account a: parent 'b' is not declared"),
    ([{"name": "a"}], [], [{"name": "u", "account": "b"}], "user u: account 'b' is not declared"),
    ([{"name": "a", "limits": {"QOS": "fast"}}], [], [], "limit QOS names QOS 'fast', which is not declared"),
    ([{"name": "a", "limits": {"DefaultQOS": "fast"}}], [], [], "limit DefaultQOS names QOS 'fast'"),
    ([{"name": "a", "limits": {"QOS": "normal,q", "DefaultQOS": "r"}}], [{"name": "q"}, {"name": "r"}], [],
     "DefaultQOS 'r' is not in its QOS list (normal,q)"),
    ([{"name": "a", "state": "gone"}], [], [], "accounts a: state 'gone' must be present or absent"),
    ([{"name": "a b"}], [], [], "accounts[0]: name 'a b' must be a plain word"),
    ([{"name": "-rf"}], [], [], "name '-rf' must be a plain word"),
    ([{"name": "a", "users": ["x;y"]}], [], [], "user 'x;y' in users must be a plain word"),
    ([{"name": "a", "limits": {"QOS": "q"}}], [{"name": "q", "state": "absent"}], [], "names QOS 'q'"),
])
def test_problems_name_the_entry_and_the_fix(accounts, qos, users, complaint):
    found = acct.problems(accounts, qos, users)
    assert any(complaint in message for message in found), found


# --------------------------------------------------------------------------- planner

def empty_state():
    return {"qos": {"normal": {"description": "Normal QOS default", "limits": {}}},
            "accounts": {"root": {"description": "default root account", "organization": "root"}},
            "associations": {"root": {"parent": None, "limits": {}}},
            "user_associations": {("root", "root"): {"limits": {}}},
            "defaults": {"root": "root"}}


def test_plan_adds_qos_then_parents_then_children_then_users():
    wanted = acct.declared_state(
        accounts=[{"name": "child", "parent": "mid", "users": ["u"]}, {"name": "mid", "parent": "top"},
                  {"name": "top", "limits": {"QOS": "fast"}}],
        qos=[{"name": "fast", "limits": {"MaxWall": 60}}])
    commands, _ = acct.plan(wanted, empty_state(), "c", "sacctmgr")
    assert [argv[2:5] for argv in commands] == [
        ["add", "qos", "fast"], ["add", "account", "top"], ["add", "account", "mid"], ["add", "account", "child"],
        ["add", "user", "u"]]
    assert "MaxWall=01:00:00" in commands[0] and "Parent=mid" in commands[3]
    assert "DefaultAccount=child" in commands[4]


def test_plan_deletes_users_children_parents_then_qos_and_spares_protected_ones():
    state = empty_state()
    state["qos"]["old"] = {"description": "old", "limits": {}}
    state["associations"].update({"top": {"parent": "root", "limits": {}}, "sub": {"parent": "top", "limits": {}}})
    state["user_associations"][("u", "sub")] = {"limits": {}}
    state["defaults"]["u"] = "sub"
    commands, diff = acct.plan(acct.declared_state([], []), state, "c", "sacctmgr", exclusive=True)
    assert [argv[2:] for argv in commands] == [
        ["delete", "user", "where", "name=u", "account=sub", "cluster=c"],
        ["delete", "account", "where", "name=sub", "cluster=c"],
        ["delete", "account", "where", "name=top", "cluster=c"],
        ["delete", "qos", "where", "name=old"]]
    assert set(diff["before"]["accounts"]) == {"top", "sub"} and diff["after"]["accounts"] == {}
    assert acct.plan(acct.declared_state([], []), state, "c", "sacctmgr")[0] == []  # not exclusive: left alone


def test_plan_leaves_undeclared_limits_alone_and_clears_minus_one():
    state = empty_state()
    state["associations"]["a"] = {"parent": "root", "limits": {"MaxJobs": 3, "MaxWall": 3600, "GrpTRES": {"cpu": 2}}}
    wanted = acct.declared_state([{"name": "a", "limits": {"MaxJobs": -1, "maxwall": "60"}}], [])
    commands, diff = acct.plan(wanted, state, "c", "sacctmgr")
    assert commands == [["sacctmgr", "-i", "modify", "account", "where", "name=a", "cluster=c", "set", "MaxJobs=-1"]]
    assert diff["after"]["accounts"]["a"]["GrpTRES"] == "cpu=2" and "MaxJobs" not in diff["after"]["accounts"]["a"]


def test_plan_moves_the_default_account_before_deleting_the_old_one():
    state = empty_state()
    state["associations"].update({"old": {"parent": "root", "limits": {}}, "new": {"parent": "root", "limits": {}}})
    state["user_associations"].update({("u", "old"): {"limits": {}}, ("u", "new"): {"limits": {}}})
    state["defaults"]["u"] = "old"
    wanted = acct.declared_state([{"name": "new", "users": ["u"]}, {"name": "old", "state": "absent"}], [])
    commands, _ = acct.plan(wanted, state, "c", "sacctmgr")
    assert [argv[2:4] + argv[-1:] for argv in commands] == [
        ["modify", "user", "DefaultAccount=new"], ["delete", "account", "cluster=c"]]


def test_recorded_respelling_plans_nothing(recorded):
    params = step(recorded, "respelled")["params"]
    wanted = acct.declared_state(params["accounts"], params["qos"], params["users"])
    assert acct.plan(wanted, shown_state(recorded, "respelled"), "reccluster", "sacctmgr")[0] == []


def test_a_new_user_in_two_accounts_is_added_to_the_default_first():
    # `add user bob account=chemistry DefaultAccount=physics` adds bob to physics too (seen on
    # 22.05 and 24.11), so the next add failed with "Nothing new added".
    wanted = acct.declared_state([{"name": "physics", "users": ["bob"]}, {"name": "chemistry", "users": ["bob"]}], [])
    state = empty_state()
    state["associations"].update({"physics": {"parent": "root", "limits": {}},
                                  "chemistry": {"parent": "root", "limits": {}}})
    commands, _ = acct.plan(wanted, state, "c", "sacctmgr")
    assert [argv[3:] for argv in commands] == [
        ["user", "bob", "account=physics", "cluster=c", "DefaultAccount=physics"],
        ["user", "bob", "account=chemistry", "cluster=c"]]


def test_default_account_must_be_one_of_the_users_accounts():
    found = acct.problems([{"name": "a", "users": ["u"]}, {"name": "b"}], [],
                          [{"name": "u", "account": "a", "default_account": "b"}])
    assert any("default_account 'b' is not an account this user is declared in" in message for message in found)
