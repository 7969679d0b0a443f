"""The playground (scripts/playground.sh) reads its containers' settings from the login scenario
and writes an inventory from a template; both checked here without Docker. Its real run is
tests/playground (by hand)."""
from pathlib import Path

import jinja2
import yaml

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "scripts" / "playground" / "containers.yml"
SCENARIO = REPO / "molecule" / "login" / "molecule.yml"
# Keys that name a scenario's own hosts and network, not how a container runs.
SCENARIO_ONLY = {"name", "groups", "docker_networks", "networks", "pre_build_image"}


def container_task():
    (play,) = yaml.safe_load(PLAYBOOK.read_text())
    return next(task for task in play["tasks"] if "community.docker.docker_container" in task)


def test_every_setting_of_the_test_beds_containers_reaches_the_playgrounds():
    options = container_task()["community.docker.docker_container"]
    passed_on = {key for key, value in options.items() if f"__settings.{key}" in str(value)}
    for platform in yaml.safe_load(SCENARIO.read_text())["platforms"]:
        missing = set(platform) - SCENARIO_ONLY - passed_on
        assert not missing, f"{platform['name']} sets {sorted(missing)}, which the playground drops"


def test_the_login_scenario_has_a_host_in_every_group_the_playground_copies():
    groups = {group for platform in yaml.safe_load(SCENARIO.read_text())["platforms"] for group in platform["groups"]}
    assert {"slurmctld", "slurmd", "slurm_login"} <= groups


def test_the_inventory_puts_the_hub_on_the_login_node():
    template = jinja2.Template((PLAYBOOK.parent / "inventory.yml.j2").read_text(), trim_blocks=True)
    text = template.render(
        playground_dir="/checkout/.cache/playground", playground_hub_port=8001, playground_jupyterhub_port=8000,
        playground_user="demo", playground_controller="playground-ctl", playground_login="playground-login",
        playground_computes=["playground-node01", "playground-node02"],
        lookup=lambda plugin, path: "$6$salt$hash" if path.endswith("demo-password.hash") else None,
    )
    inventory = yaml.safe_load(text)["all"]
    hosts = {group: list(body["hosts"]) for group, body in inventory["children"].items()}
    assert hosts == {
        "slurmctld": ["playground-ctl"],
        "slurmd": ["playground-node01", "playground-node02"],
        "slurm_login": ["playground-login"],
        "jupyterhub": ["playground-login"],
    }
    assert inventory["vars"]["ansible_connection"] == "community.docker.docker"
    assert inventory["vars"]["jupyterhub_port"] == 8000
    assert inventory["vars"]["cluster_users_users"] == [{"name": "demo", "uid": 5001, "password": "$6$salt$hash"}]
