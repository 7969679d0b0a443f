"""Unit tests of the hpc.slurm filters, partly against real Slurm outputs recorded in tests/unit/fixtures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.hpc.slurm.plugins.filter.slurm import (
    FilterModule,
    slurm_conf_line,
    slurm_conf_render,
    slurm_hostlist,
    slurm_hostlist_expand,
    slurm_mem_per_cpu,
    slurm_node_config,
    slurm_node_lines,
    slurm_node_mismatches,
    slurm_parse_node_config,
    slurm_partition_settings,
    slurm_unknown_keys,
)

REPO = Path(__file__).resolve().parents[4]
FIXTURES = REPO / "tests" / "unit" / "fixtures"
RECORDED_VERSIONS = ("debian12", "debian13")
HANDWRITTEN_2SOCKET = FIXTURES / "slurmd-C.handwritten.2socket-16core-2thread.txt"


def recorded_hostnames(version):
    """{expression: lines printed by `scontrol show hostnames expression`} from the recording."""
    cases, expression = {}, None
    for line in (FIXTURES / f"scontrol-hostnames.{version}.txt").read_text().splitlines():
        if line.startswith("== "):
            expression = line[3:]
            cases[expression] = []
        elif not line.startswith("#"):
            cases[expression].append(line)
    return cases


def slurm_refused(expression, slurm_output):
    return slurm_output == [f"Invalid hostlist: {expression}"]


# Slurm 24.11 reads these literally; we refuse them because no real host name contains brackets.
STRICTER_THAN_SLURM = {"a[[1]]"}
RECORDED_EXPANSIONS = [
    pytest.param(expression, output, id=f"{version}:{expression}")
    for version in RECORDED_VERSIONS
    for expression, output in recorded_hostnames(version).items()
]
RECORDED_HOST_LISTS = [
    case for case in RECORDED_EXPANSIONS
    if not slurm_refused(*case.values) and case.values[0] not in STRICTER_THAN_SLURM
]
# Recorded expressions that are already in the form slurm_hostlist writes.
CANONICAL_EXPRESSIONS = [
    "a[1-3],b", "login,node[01-03,05]", "node[9-10]", "node[01-10]", "node1,node02",
    "node[001-003,099-101]", "c[1,3-5]", "n0,n[00-01]", "rack1-node[3-4]",
]


def test_recordings_cover_valid_and_refused_expressions():
    for version in RECORDED_VERSIONS:
        cases = recorded_hostnames(version)
        assert set(CANONICAL_EXPRESSIONS) <= set(cases)
        assert any(slurm_refused(expression, output) for expression, output in cases.items())


@pytest.mark.parametrize(("expression", "slurm_output"), RECORDED_EXPANSIONS)
def test_hostlist_expand_agrees_with_scontrol(expression, slurm_output):
    if slurm_refused(expression, slurm_output) or expression in STRICTER_THAN_SLURM:
        with pytest.raises(AnsibleFilterError, match="slurm_hostlist_expand"):
            slurm_hostlist_expand(expression)
    else:
        assert slurm_hostlist_expand(expression) == slurm_output


@pytest.mark.parametrize(("expression", "slurm_output"), RECORDED_HOST_LISTS)
def test_hostlist_compresses_slurm_expansion_back_to_same_hosts(expression, slurm_output):
    compressed = slurm_hostlist(slurm_output)
    assert sorted(slurm_hostlist_expand(compressed)) == sorted(set(slurm_output))


@pytest.mark.parametrize("version", RECORDED_VERSIONS)
@pytest.mark.parametrize("expression", CANONICAL_EXPRESSIONS)
def test_hostlist_writes_the_expression_slurm_expanded(version, expression):
    hosts = recorded_hostnames(version)[expression]
    shuffled_with_duplicate = hosts[::-1] + hosts[:1]
    assert slurm_hostlist(shuffled_with_duplicate) == expression


@pytest.mark.parametrize(("names", "expected"), [
    (["node01", "node02", "node03", "node05", "login"], "login,node[01-03,05]"),
    (["node1", "node02"], "node1,node02"),
    (["node1", "node01"], "node1,node01"),
    (["node10", "node9", "node11"], "node[9-11]"),
    (["node10", "node01", "node02"], "node[01-02,10]"),
    (["n99", "n100", "n05"], "n[05,99],n100"),
    (["b", "a", "b"], "a,b"),
    (["node", "node2", "node1"], "node,node[1-2]"),
    (["rack1-node3", "rack1-node4", "rack2-node3"], "rack1-node[3-4],rack2-node3"),
    (["gpu7", "cpu2", "gpu8", "cpu1"], "cpu[1-2],gpu[7-8]"),
    (["42", "41"], "[41-42]"),
    (["n00", "n000", "n0"], "n0,n00,n000"),
    (["n00", "n01", "n1"], "n[00-01],n1"),
    ([], ""),
])
def test_hostlist(names, expected):
    assert slurm_hostlist(names) == expected


@pytest.mark.parametrize("names", [["node[1]"], ["a,b"], [""], ["a b"], [None], [5], "node1", None])
def test_hostlist_rejects_bad_names(names):
    with pytest.raises(AnsibleFilterError, match="slurm_hostlist"):
        slurm_hostlist(names)


@pytest.mark.parametrize(("expression", "expected"), [
    ("a[1-3],b", ["a1", "a2", "a3", "b"]),
    ("n[08-10]", ["n08", "n09", "n10"]),
    ("rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]),
    (" login ", ["login"]),
    ("", []),
])
def test_hostlist_expand(expression, expected):
    assert slurm_hostlist_expand(expression) == expected


@pytest.mark.parametrize(("expression", "reason"), [
    ("a,,b", "empty name"),
    ("a[1-3", "unclosed"),
    ("a1-3]", "unbalanced"),
    ("a[1-2]]", "unbalanced"),
    ("a[3-1]", "ends before it starts"),
    ("a[1-x]", "bad range"),
    ("a[1,]", "bad range"),
    ("a[1-3] b", "whitespace"),
    ("n[1-100000]", "more than"),
    (None, "expected a hostlist string"),
])
def test_hostlist_expand_rejects_malformed(expression, reason):
    with pytest.raises(AnsibleFilterError, match=reason):
        slurm_hostlist_expand(expression)


@pytest.mark.parametrize("version", RECORDED_VERSIONS)
def test_parse_recorded_slurmd_c(version):
    text = (FIXTURES / f"slurmd-C.{version}.txt").read_text()
    config = slurm_parse_node_config(text)
    assert "UpTime" not in config and "UpTime=" in text
    assert isinstance(config["NodeName"], str) and config["NodeName"]
    counts = [config[key] for key in ("Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")]
    assert all(isinstance(count, int) and count >= 1 for count in counts)
    assert config["CPUs"] == counts[0] * counts[1] * counts[2] * counts[3]
    assert isinstance(config["RealMemory"], int) and config["RealMemory"] > 0


def test_parse_handwritten_two_socket_example():
    assert slurm_parse_node_config(HANDWRITTEN_2SOCKET.read_text()) == {
        "NodeName": "cn042", "CPUs": 64, "Boards": 1, "SocketsPerBoard": 2, "CoresPerSocket": 16,
        "ThreadsPerCore": 2, "RealMemory": 257578,
    }


G1_LINE = "NodeName=g1 CPUs=8 Boards=1 SocketsPerBoard=1 CoresPerSocket=4 ThreadsPerCore=2 RealMemory=64000"
N1_COUNTS = "CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1"


@pytest.mark.parametrize(("text", "extra"), [
    (f"{G1_LINE} Gres=gpu:a100:4\nUpTime=1-02:03:04\n", {"Gres": "gpu:a100:4"}),
    (f"slurmd: error: cgroup namespace 'freezer' not mounted. aborting\n{G1_LINE}\n", {}),
])
def test_parse_node_config_keeps_extra_keys_and_skips_log_lines(text, extra):
    assert slurm_parse_node_config(text) == {
        "NodeName": "g1", "CPUs": 8, "Boards": 1, "SocketsPerBoard": 1, "CoresPerSocket": 4,
        "ThreadsPerCore": 2, "RealMemory": 64000, **extra,
    }


@pytest.mark.parametrize(("text", "reason"), [
    (f"NodeName=n1 {N1_COUNTS}\nUpTime=0-00:00:01", "RealMemory missing"),
    (f"{N1_COUNTS} RealMemory=100", "NodeName missing"),
    (f"NodeName=n1 {N1_COUNTS.replace('CPUs=2', 'CPUs=two')} RealMemory=100", "CPUs must be"),
    ("NodeName=n1 CPUs=2 stray Boards=1", "'stray' is not Key=Value"),
    ("", "NodeName, CPUs"),
    (None, "expected the text"),
])
def test_parse_node_config_rejects_incomplete_output(text, reason):
    with pytest.raises(AnsibleFilterError, match=reason):
        slurm_parse_node_config(text)


def hardware(cpus=2, sockets=1, cores=2, threads=1, memory=24000, **extra):
    return {"CPUs": cpus, "Boards": 1, "SocketsPerBoard": sockets, "CoresPerSocket": cores,
            "ThreadsPerCore": threads, "RealMemory": memory, **extra}


SMALL_LINE = "CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1"


@pytest.mark.parametrize(("nodes", "reserve", "expected"), [
    pytest.param(
        [{"name": f"node0{i}", "hardware": hardware(NodeName=f"node0{i}")} for i in (3, 1, 2, 5)], 0,
        [f"NodeName=node[01-03,05] {SMALL_LINE} RealMemory=24000 State=UNKNOWN"], id="one-group"),
    pytest.param(
        [{"name": "node01", "hardware": hardware()}, {"name": "node02", "hardware": hardware(memory=24001)}], 1000,
        [f"NodeName=node01 {SMALL_LINE} RealMemory=23000 State=UNKNOWN",
         f"NodeName=node02 {SMALL_LINE} RealMemory=23001 State=UNKNOWN"], id="memory-differs-after-reserve"),
    pytest.param(
        [{"name": "gpu1", "hardware": hardware(Gres="gpu:2"), "params": {"Weight": 10, "Features": ["gpu", "ib"]}},
         {"name": "gpu2", "hardware": hardware(), "params": {"Features": "gpu,ib", "Weight": "10"}},
         {"name": "cpu1", "hardware": hardware(), "params": {"State": "CLOUD"}}], 0,
        [f"NodeName=cpu1 {SMALL_LINE} RealMemory=24000 State=CLOUD",
         f"NodeName=gpu[1-2] {SMALL_LINE} RealMemory=24000 Features=gpu,ib Weight=10 State=UNKNOWN"],
        id="params-sorted-state-override"),
    pytest.param(
        [{"name": "c2", "hardware": hardware(), "address": "10.0.0.2"},
         {"name": "c1", "hardware": hardware(), "address": "10.0.0.1"},
         {"name": "c3", "hardware": hardware()}], 0,
        [f"NodeName=c1 NodeAddr=10.0.0.1 {SMALL_LINE} RealMemory=24000 State=UNKNOWN",
         f"NodeName=c2 NodeAddr=10.0.0.2 {SMALL_LINE} RealMemory=24000 State=UNKNOWN",
         f"NodeName=c3 {SMALL_LINE} RealMemory=24000 State=UNKNOWN"], id="addressed-nodes-alone"),
    pytest.param([], 0, [], id="no-nodes"),
])
def test_node_lines(nodes, reserve, expected):
    assert slurm_node_lines(configured(nodes, reserve)) == expected
    assert slurm_node_lines(configured(nodes[::-1], reserve)) == expected


def configured(nodes, reserve=0):
    """Nodes as the role records them: name, address and the settings slurm_node_config gives."""
    return [{"name": node["name"], "address": node.get("address"), "settings": slurm_node_config(node, reserve)}
            for node in nodes]


def test_node_config_takes_hardware_overrides_then_mismatches_catch_them():
    node = {"name": "n1", "hardware": hardware(), "params": {"realmemory": 999999, "Weight": 5}}
    settings = slurm_node_config(node)
    assert settings["RealMemory"] == 999999 and "realmemory" not in settings and settings["Weight"] == 5
    problems = slurm_node_mismatches(settings, hardware())
    assert len(problems) == 1 and "Low RealMemory" in problems[0]


def test_mem_per_cpu():
    assert slurm_mem_per_cpu(slurm_node_config({"name": "n1", "hardware": hardware(cpus=4, memory=8000)}, 1000)) == 1750


@pytest.mark.parametrize(("node", "reserve", "reason"), [
    ({"name": "n1", "hardware": hardware(memory=2048)}, 2048,
     "node n1 has RealMemory=2048 MB, which memory_reserve_mb=2048 would leave below 1 MB"),
    ({"name": "n1", "hardware": hardware()}, -1, "memory_reserve_mb must be a non-negative integer"),
    ({"name": "n1", "hardware": hardware(), "params": {"nodeaddr": "10.0.0.1"}}, 0,
     "node n1: slurm_node_settings may not set nodeaddr"),
    ({"name": "n1", "hardware": {"CPUs": 2}}, 0, "node n1: hardware Boards must be a non-negative integer, got None"),
    ({"hardware": hardware()}, 0, "each node needs a name and a hardware dict"),
])
def test_node_config_rejects(node, reserve, reason):
    with pytest.raises(AnsibleFilterError, match=reason):
        slurm_node_config(node, reserve)


@pytest.mark.parametrize(("nodes", "reason"), [
    ([{"name": "n1", "settings": {"CPUs": 1}}, {"name": "n1", "settings": {"CPUs": 1}}], "node n1 is listed twice"),
    ([{"name": "n1", "settings": {"Features": "a#b"}}], "key Features"),
    ([{"name": "n1"}], "each node needs a name and its settings"),
    ({"name": "n1"}, "expected a list of node dicts"),
])
def test_node_lines_rejects(nodes, reason):
    with pytest.raises(AnsibleFilterError, match=reason):
        slurm_node_lines(nodes)


NODE_NAMES = {"node01": "node01", "node02": "node02", "host3.example": "node03", "node03": "node03"}


@pytest.mark.parametrize(("partitions", "expected"), [
    ([{"name": "main", "default": True, "default_time": "01:00:00", "max_time": "7-00:00:00"}],
     [{"PartitionName": "main", "Nodes": "node[01-03]", "Default": "YES", "DefaultTime": "01:00:00",
       "MaxTime": "7-00:00:00", "State": "UP"}]),
    ([{"name": "gpu", "nodes": ["host3.example", "node01"], "state": "DOWN", "settings": {"PriorityTier": 2}},
      {"name": "all"}],
     [{"PartitionName": "gpu", "Nodes": "node[01,03]", "Default": "NO", "State": "DOWN", "PriorityTier": 2},
      {"PartitionName": "all", "Nodes": "node[01-03]", "Default": "NO", "State": "UP"}]),
    ([], []),
])
def test_partition_settings(partitions, expected):
    assert slurm_partition_settings(partitions, NODE_NAMES) == expected


@pytest.mark.parametrize(("partitions", "reason"), [
    ([{"name": "DEFAULT"}], "Partition DEFAULT: DEFAULT is Slurm's name for the defaults"),
    ([{"name": "default"}], "Partition default: DEFAULT is Slurm's name"),
    ([{"name": "a"}, {"name": "a"}], "Partition a is declared twice"),
    ([{"name": "a", "default": "yes"}], "Partition a: default must be true or false, got 'yes'"),
    ([{"name": "a", "default": True}, {"name": "b", "default": True}], "Partitions a, b all have default: true"),
    ([{"name": "a", "settings": {"nodes": "ALL"}}], "Partition a: settings may not set nodes"),
    ([{"name": "a", "settings": {"PartitionName": "b", "Default": "YES"}}], "settings may not set Default, PartitionName"),
    ([{"name": "a", "nodes": []}], "Partition a has no nodes"),
    ([{"name": "a", "nodes": ["ghost07"]}], "names nodes that are not compute hosts of this inventory: ghost07"),
    ([{"name": "a", "max_time": "1:00\\"}], "key MaxTime: value .* ends in"),
    ([{"name": "a", "maxtime": "1:00"}], "Partition a: unknown field"),
    ([{"name": "main part"}], "Partition main part: give it a 'name'"),
    ([{"nodes": ["node01"]}], "Partition \\(no name\\): give it a 'name'"),
])
def test_partition_settings_rejects(partitions, reason):
    with pytest.raises(AnsibleFilterError, match=reason):
        slurm_partition_settings(partitions, NODE_NAMES)


@pytest.mark.parametrize(("params", "expected"), [
    ({"SlurmctldHost": "ctl", "SlurmctldPort": 6817, "ReturnToService": 2},
     "SlurmctldHost=ctl SlurmctldPort=6817 ReturnToService=2"),
    ({"Default": True, "Hidden": False, "OverSubscribe": "NO"}, "Default=YES Hidden=NO OverSubscribe=NO"),
    ({"Nodes": ["n1", "n[2-3]"], "MaxTime": "INFINITE"}, "Nodes=n1,n[2-3] MaxTime=INFINITE"),
    ({"Features": "big mem", "Weight": 1.5}, 'Features="big mem" Weight=1.5'),
    ({"Z": 1, "A": None, "B": 2}, "Z=1 B=2"),
    ({}, ""),
])
def test_conf_line(params, expected):
    assert slurm_conf_line(params) == expected


@pytest.mark.parametrize(("params", "reason"), [
    ({"bad key": 1}, "invalid key 'bad key'"),
    ({"1Key": 1}, "invalid key '1Key'"),
    ({"Key=": 1}, "invalid key 'Key='"),
    ({"Key\n": 1}, "invalid key"),
    ({"Epilog": "/bin/x # y"}, "key Epilog: .* contains '#'"),
    ({"Epilog": "a\nb"}, "key Epilog: .* line break"),
    ({"Reason": 'say "hi"'}, "key Reason: .* double quote"),
    ({"Nodes": []}, "key Nodes: .* is empty"),
    ({"Nodes": ""}, "key Nodes: .* is empty"),
    ({"Nodes": {"a": 1}}, "key Nodes: unsupported value"),
    (["Key=1"], "expected a dict"),
])
def test_conf_line_rejects(params, reason):
    with pytest.raises(AnsibleFilterError, match=f"slurm_conf_line: {reason}"):
        slurm_conf_line(params)


def test_conf_render_keeps_order_and_skips_null():
    settings = {"ClusterName": "hpc", "SelectType": "select/cons_tres", "TaskPlugin": None,
                "SchedulerParameters": ["bf_continue", "bf_max_job_test=500"], "PrologFlags": "Alloc,Contain"}
    assert slurm_conf_render(settings) == (
        "ClusterName=hpc\nSelectType=select/cons_tres\nSchedulerParameters=bf_continue,bf_max_job_test=500\n"
        "PrologFlags=Alloc,Contain")


def test_conf_render_names_itself_and_the_key_in_errors():
    with pytest.raises(AnsibleFilterError, match="slurm_conf_render: key SlurmctldLogFile: .* line break"):
        slurm_conf_render({"ClusterName": "hpc", "SlurmctldLogFile": "/var/log/x\n"})


HANDWRITTEN = slurm_parse_node_config(HANDWRITTEN_2SOCKET.read_text())
DRAINED = 'in slurm.conf but slurmd -C reports 257578 MB: the node would be drained for "Low RealMemory"'
EATS_RESERVE = ("in slurm.conf leaves less than memory_reserve_mb=1024 MB of the 257578 MB "
                "that slurmd -C reports to the operating system")


@pytest.mark.parametrize(("definition", "reserve", "expected"), [
    ({"CPUs": "64", "Boards": "1", "SocketsPerBoard": "2", "CoresPerSocket": "16", "ThreadsPerCore": "2",
      "RealMemory": "257578", "Features": "x"}, 0, []),
    ({"cpus": "64", "Sockets": "2", "RealMemory": "200000"}, 4096, []),
    ({"Sockets": "1", "CoresPerSocket": "32", "ThreadsPerCore": "1"}, 0,
     ["Sockets=1 in slurm.conf but slurmd -C reports 2", "CoresPerSocket=32 in slurm.conf but slurmd -C reports 16",
      "ThreadsPerCore=1 in slurm.conf but slurmd -C reports 2"]),
    ({"procs": "8", "cpus": "32"}, 0, ["cpus=32 in slurm.conf but slurmd -C reports 64"]),
    ({"RealMemory": "262144"}, 0, [f"RealMemory=262144 {DRAINED}"]),
    ({"RealMemory": "257579"}, 0, [f"RealMemory=257579 {DRAINED}"]),
    ({"RealMemory": "257578"}, 0, []),
    ({"RealMemory": "256554"}, 1024, []),
    ({"RealMemory": "256555"}, 1024, [f"RealMemory=256555 {EATS_RESERVE}"]),
    ({"RealMemory": "257000"}, 1024, [f"RealMemory=257000 {EATS_RESERVE}"]),
    ({}, 0, []),
])
def test_node_mismatches(definition, reserve, expected):
    assert slurm_node_mismatches(definition, HANDWRITTEN, memory_reserve_mb=reserve) == expected


def test_node_mismatches_message_from_the_docs():
    detected = slurm_parse_node_config(f"NodeName=n1 {N1_COUNTS} RealMemory=23998\n")
    assert slurm_node_mismatches({"RealMemory": "32000"}, detected) == [
        'RealMemory=32000 in slurm.conf but slurmd -C reports 23998 MB: the node would be drained for "Low RealMemory"']


@pytest.mark.parametrize(("definition", "detected", "reason"), [
    ({"CPUs": "many"}, HANDWRITTEN, "slurm.conf CPUs must be a non-negative integer"),
    ({"CPUs": "2"}, {"CPUs": 2}, "detected Boards must be"),
    ("CPUs=2", HANDWRITTEN, "expected a node definition dict"),
])
def test_node_mismatches_rejects(definition, detected, reason):
    with pytest.raises(AnsibleFilterError, match=reason):
        slurm_node_mismatches(definition, detected)


@pytest.mark.parametrize("fixture", [f"slurmd-C.{version}.txt" for version in RECORDED_VERSIONS]
                         + [HANDWRITTEN_2SOCKET.name])
@pytest.mark.parametrize("reserve", [0, 1024])
def test_generated_node_line_matches_the_hardware_it_came_from(fixture, reserve):
    detected = slurm_parse_node_config((FIXTURES / fixture).read_text())
    names = ["cn01", "cn02", "login"]
    nodes = configured([{"name": name, "hardware": detected} for name in names], reserve)
    (line,) = slurm_node_lines(nodes)
    assert line.startswith("NodeName=cn[01-02],login ")
    for node in nodes:
        definition = node["settings"]
        assert int(definition["RealMemory"]) == detected["RealMemory"] - reserve
        assert slurm_node_mismatches(definition, detected, memory_reserve_mb=reserve) == []
        assert slurm_node_mismatches(definition, dict(detected, RealMemory=detected["RealMemory"] - reserve - 1))


@pytest.mark.parametrize(("settings", "known", "expected"), [
    ({"SlurmctldPort": 1, "slurmdport": 2, "Bogus": 3, "AnotherTypo": 4}, ["SlurmctldPort", "SlurmdPort"],
     ["AnotherTypo", "Bogus"]),
    ({"CLUSTERNAME": "x"}, ["ClusterName"], []),
    ({}, [], []),
])
def test_unknown_keys(settings, known, expected):
    assert slurm_unknown_keys(settings, known) == expected


@pytest.mark.parametrize(("settings", "known"), [(["ClusterName"], ["ClusterName"]), ({"A": 1}, "A")])
def test_unknown_keys_rejects(settings, known):
    with pytest.raises(AnsibleFilterError, match="slurm_unknown_keys"):
        slurm_unknown_keys(settings, known)


def test_filters_are_registered_under_their_names():
    assert set(FilterModule().filters()) == {
        "slurm_hostlist", "slurm_hostlist_expand", "slurm_parse_node_config", "slurm_node_config",
        "slurm_mem_per_cpu", "slurm_node_lines", "slurm_partition_settings", "slurm_conf_line",
        "slurm_conf_render", "slurm_node_mismatches", "slurm_unknown_keys", "slurm_canonical_keys",
    }


def test_ansible_resolves_the_filters_by_fqcn():
    ansible = Path(sys.executable).parent / "ansible"
    template = ("{{ ['node02', 'node01', 'login'] | hpc.slurm.slurm_hostlist }} "
                "{{ {'Default': true, 'Nodes': ['a', 'b']} | hpc.slurm.slurm_conf_line }}")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / "collections"),
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    result = subprocess.run(
        [str(ansible), "localhost", "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}",
         "-m", "ansible.builtin.debug", "-a", f"msg={template!r}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    message = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    assert message == "login,node[01-02] Default=YES Nodes=a,b"


def test_canonical_keys_respell_known_keys_only():
    from ansible_collections.hpc.slurm.plugins.filter.slurm import slurm_canonical_keys
    assert slurm_canonical_keys({"selecttype": "x", "MyKey": 1}, ["SelectType"]) == {"SelectType": "x", "MyKey": 1}
