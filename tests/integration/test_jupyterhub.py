"""JupyterHub on the login node (molecule/login, group `jupyterhub`): a real browser (headless
Chromium, driven from the test machine) logs in as a declared user with her system password,
picks partition, time and CPUs on the spawn form, and gets a JupyterLab that runs as her Slurm
job on a compute node; the job shows in squeue and in JupyterLab's Slurm queue view, and ends
when she stops the server. The hub's secrets are files of mode 0600 that no run prints.

Screenshots go to .cache/test-artifacts/jupyterhub/.
"""
import json
import re
import shutil
import ssl
import subprocess
import time
import urllib.request
from urllib.parse import urlsplit

import pytest

from conftest import REPO, docker_host

pytestmark = pytest.mark.login

ARTIFACTS = REPO / ".cache" / "test-artifacts" / "jupyterhub"
PASSWORD = "alice-test-password"  # molecule/login/molecule.yml: the hash of this password
NOTEBOOK = "hub-test-hostname.ipynb"
SECRET_FILES = ("/var/lib/jupyterhub/cookie_secret", "/etc/jupyterhub/proxy.env")


@pytest.fixture(scope="module")
def hub_name(cluster):
    # The scenario's one login node is its hub host.
    assert len(cluster["slurm_login"]) == 1, cluster["slurm_login"]
    return cluster["slurm_login"][0]


@pytest.fixture(scope="module")
def hub(hub_name):
    return docker_host(hub_name)


@pytest.fixture(scope="module")
def hub_url(hub_name, hub, hostvars):
    # Container addresses on the docker network are reachable from the test machine.
    address = subprocess.run(
        ["docker", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", hub_name],
        check=True, capture_output=True, text=True).stdout.split()[0]
    port = hostvars(hub_name).get("jupyterhub_port", 8000)
    return f"http://{address}:{port}"


@pytest.fixture(scope="module")
def browser():
    # Imported here, not skipped when missing: requirements.txt pins Selenium for .venv.
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for binary in ("chromium", "chromedriver"):
        if not shutil.which(binary):
            pytest.fail(f"{binary} is not installed: scripts/test.sh installs Debian's chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    # root on a test machine: Chromium's sandbox needs an unprivileged user.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.implicitly_wait(0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    yield driver
    driver.quit()


def wait_for(what, check, timeout, interval=1.0):
    """Poll check() until it returns something true; fail naming what, the last value and the time."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < timeout:
        try:
            last = check()
        except Exception as error:  # a page still loading, an element not there yet
            last = repr(error)[:300]
        else:
            if last:
                return last
        time.sleep(interval)
    pytest.fail(f"waited {time.monotonic() - start:.0f} s for {what}; last: {last!r}")


def alice_jobs(controller):
    out = controller.run_expect([0], "squeue --noheader --user alice --format '%i|%j|%T|%N|%P|%C|%l'").stdout
    return [dict(zip(("id", "name", "state", "node", "partition", "cpus", "time"), line.split("|")))
            for line in out.splitlines() if line.strip()]


def shot(driver, name):
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def _dismiss_news(browser):
    """JupyterLab asks once whether to fetch Jupyter's news: no (and no popup over the screenshots)."""
    from selenium.webdriver.common.by import By

    for button in browser.find_elements(By.CSS_SELECTOR, ".jp-toast-button, .jp-Notification-Toast-Close"):
        if button.text.strip() == "No" and button.is_displayed():
            button.click()
            return


def notebook(source):
    return json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "id": "hostname", "metadata": {},
                   "outputs": [], "source": [source]}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5})


def test_the_hubs_secrets_are_private_files(hub):
    for path in SECRET_FILES:
        secret = hub.file(path)
        assert secret.exists, path
        assert (secret.user, secret.group, secret.mode) == ("root", "root", 0o600), path
        assert len(secret.content_string.strip()) >= 48, path


def test_the_hub_runs_as_a_service_on_its_port(hub, hub_url):
    assert hub.service("jupyterhub").is_running
    assert hub.service("jupyterhub").is_enabled
    assert hub.socket(f"tcp://{hub_url.rsplit(':', 1)[1]}").is_listening


def test_compute_nodes_run_no_hub(computes):
    # Debian's jupyterhub package, installed there for jupyterhub-singleuser, starts one.
    for node in computes:
        assert not node.service("jupyterhub").is_running, node.backend.name
        assert not node.socket("tcp://8000").is_listening, node.backend.name


def test_a_user_logs_in_spawns_a_slurm_job_runs_a_cell_sees_the_queue_and_stops_it(
        browser, hub_url, controller, computes, hub):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    nodes = {c.check_output("hostname"): c for c in computes}
    # The job starts in alice's home on whichever node Slurm picks: a notebook waits on each.
    for node in nodes.values():
        node.run_expect([0], f"runuser -u alice -- sh -c 'cat > ~/{NOTEBOOK}' <<'EOF'\n"
                             f"{notebook('import socket; print(socket.gethostname())')}\nEOF")
    try:
        browser.get(f"{hub_url}/hub/login")
        wait_for("the login form", lambda: browser.find_element(By.ID, "username_input"), 30)
        shot(browser, "01-login")
        browser.find_element(By.ID, "username_input").send_keys("alice")
        browser.find_element(By.ID, "password_input").send_keys(PASSWORD)
        browser.find_element(By.ID, "login_submit").click()

        wait_for("the hub to take the login", lambda: "/hub/login" not in browser.current_url, 30)
        # A server left by an earlier run is stopped first: the test starts its own.
        browser.get(f"{hub_url}/hub/home")
        stop = wait_for("the hub's home page", lambda: browser.find_elements(By.ID, "start") + browser.find_elements(By.ID, "stop"), 30)
        if any(button.get_attribute("id") == "stop" and button.is_displayed() for button in stop):
            browser.find_element(By.ID, "stop").click()
            wait_for("the earlier server to stop", lambda: browser.find_element(By.ID, "start").is_displayed(), 120)
        browser.get(f"{hub_url}/hub/spawn")
        form = wait_for("the spawn form", lambda: browser.find_element(By.ID, "spawn_form"), 60)
        Select(form.find_element(By.NAME, "partition")).select_by_value("main")
        Select(form.find_element(By.NAME, "runtime")).select_by_value("01:00:00")
        Select(form.find_element(By.NAME, "nprocs")).select_by_value("2")
        shot(browser, "02-spawn-form")
        form.find_element(By.CSS_SELECTOR, "[type=submit]").click()

        job = wait_for("alice's notebook job to run in squeue on the controller",
                       lambda: next((j for j in alice_jobs(controller) if j["state"] == "RUNNING"), None), 180)
        assert job["name"] == "jupyterhub" and job["node"] in nodes, job
        assert (job["partition"], job["cpus"], job["time"]) == ("main", "2", "1:00:00"), job

        wait_for("JupyterLab to open", lambda: "/user/alice/lab" in browser.current_url
                 and browser.find_elements(By.CSS_SELECTOR, ".jp-LabShell"), 300)
        browser.get(f"{hub_url}/user/alice/lab/tree/{NOTEBOOK}")
        # JupyterLab 4's editor (CodeMirror 6) takes keys in its contenteditable part.
        cell = (By.CSS_SELECTOR, ".jp-Notebook .jp-Cell .cm-content")
        wait_for("the notebook's cell", lambda: browser.find_element(*cell), 90)
        wait_for("the kernel to be idle", lambda: "Idle" in browser.find_element(By.CSS_SELECTOR, ".jp-StatusBar-Widget").text, 90)
        _dismiss_news(browser)
        browser.find_element(*cell).click()
        ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
        printed = wait_for("the cell's output", lambda: "".join(
            e.text for e in browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")).strip(), 90)
        assert printed == job["node"], (printed, job)
        shot(browser, "03-notebook")

        # jupyterlab-slurm's queue view ("Slurm Dashboard"), from a fresh JupyterLab's launcher.
        browser.get(f"{hub_url}/user/alice/lab?reset")
        card = wait_for("the Slurm Dashboard in JupyterLab's launcher", lambda: next(
            (e for e in browser.find_elements(By.CSS_SELECTOR, ".jp-LauncherCard") if "Slurm" in e.text), None), 90)
        _dismiss_news(browser)
        card.click()
        row = wait_for("the notebook job in JupyterLab's Slurm queue view", lambda: next(
            (e.text for e in browser.find_elements(By.CSS_SELECTOR, "[role=row], tr")
             if job["id"] in e.text.split() and "RUNNING" in e.text), None), 90)
        assert "alice" in row and job["node"] in row, row
        shot(browser, "04-slurm-queue")

        browser.get(f"{hub_url}/hub/home")
        wait_for("the stop button", lambda: browser.find_element(By.ID, "stop"), 30).click()
        wait_for("the notebook job to leave the queue",
                 lambda: not any(j["id"] == job["id"] and j["state"] in ("RUNNING", "PENDING") for j in alice_jobs(controller)), 120)
        wait_for("the hub to offer a new server", lambda: browser.find_element(By.ID, "start").is_displayed(), 60)
    except BaseException:
        shot(browser, "failure")
        raise
    finally:
        # Left running by a failure: the hub stops it (it would poll a cancelled job for a while).
        if any(j["name"] == "jupyterhub" for j in alice_jobs(controller)):
            browser.get(f"{hub_url}/hub/home")
            for button in browser.find_elements(By.ID, "stop"):
                if button.is_displayed():
                    button.click()
                    time.sleep(10)
            controller.run("scancel --user alice --name jupyterhub")
        for node in nodes.values():
            node.run(f"rm -f /home/alice/{NOTEBOOK}")


def test_no_run_prints_the_hubs_secrets_or_a_password_and_a_rerun_changes_nothing(hub, run_playbook):
    secrets = [hub.file(path).content_string.strip().split("=", 1)[-1] for path in SECRET_FILES]
    rerun = run_playbook("site.yml", "-vvv")
    output = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, output[-3000:]
    for secret in secrets + [PASSWORD]:
        assert secret not in output
    changes = {host: int(n) for host, n in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", rerun.stdout, re.M)}
    assert changes and set(changes.values()) == {0}, changes
    assert [hub.file(path).content_string.strip().split("=", 1)[-1] for path in SECRET_FILES] == secrets


def test_a_hub_host_outside_slurm_login_is_refused_before_any_host_changes(cluster, run_playbook, tmp_path):
    node = cluster["slurmd"][0]
    extra = tmp_path / "hub-on-a-compute-node.yml"
    extra.write_text(f"jupyterhub:\n  hosts:\n    {node}:\n")
    run = run_playbook("site.yml", "-i", str(extra))
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert f"The inventory group 'jupyterhub' holds {node}, which the group 'slurm_login' does not" in output, output[-3000:]
    assert "Add these hosts to 'slurm_login' too." in output


@pytest.mark.parametrize("extra,message", [
    ({"jupyterhub_spawn_times": ["soon"]}, "jupyterhub_spawn_times (['soon']) Slurm times such as 01:00:00"),
    ({"jupyterhub_port": 8081}, "jupyterhub_port (8081) and jupyterhub_hub_port (8081) must be two different TCP ports"),
    ({"jupyterhub_pip_index_url": "mirror.example"}, "jupyterhub_pip_index_url (mirror.example) must be empty or an http(s):// or file:// URL"),
    ({"jupyterhub_ssl_cert": "/etc/ssl/hub.pem"}, "jupyterhub_ssl_cert (/etc/ssl/hub.pem) and jupyterhub_ssl_key () are both empty"),
], ids=["time", "port", "index-url", "certificate-without-key"])
def test_bad_hub_settings_are_refused_before_any_host_changes(run_playbook, extra, message):
    run = run_playbook("site.yml", extra_vars=extra)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert message in " ".join(output.split()), output[-3000:]
    changes = {host: int(n) for host, n in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", run.stdout, re.M)}
    assert changes and set(changes.values()) == {0}, changes


def test_the_role_alone_with_its_documented_variables_changes_nothing_on_the_converged_cluster(run_playbook, hub, hub_url):
    run = run_playbook("tests/integration/playbooks/jupyterhub_alone.yml")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    changes = {host: int(n) for host, n in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", run.stdout, re.M)}
    assert changes and set(changes.values()) == {0}, changes
    assert hub.service("jupyterhub").is_running


def hub_api(url, context=None):
    with urllib.request.urlopen(f"{url}/hub/api", timeout=10, context=context) as response:
        return response.status, json.load(response)


def test_the_hub_serves_https_with_the_sites_certificate_and_back_to_http_when_it_is_unset(
        run_playbook, hub, hub_name, hub_url, tmp_path):
    cert, key = "/etc/jupyterhub/test-hub.crt", "/etc/jupyterhub/test-hub.key"
    tls = {"jupyterhub_ssl_cert": cert, "jupyterhub_ssl_key": key}
    playbook = "tests/integration/playbooks/jupyterhub_alone.yml"
    # Only the hub host serves browsers; the compute nodes' part does not change.
    hub_only = ("--limit", hub_name)

    # Not there yet: refused on the hub host, which keeps serving HTTP.
    missing = run_playbook(playbook, *hub_only, extra_vars=tls)
    output = missing.stdout + missing.stderr
    assert missing.returncode != 0, output[-3000:]
    assert f"{cert} (jupyterhub_ssl_cert or jupyterhub_ssl_key) is no file on {hub_name}" in " ".join(output.split())
    assert hub_api(hub_url)[0] == 200

    made = hub.run(f"openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN={hub_name} -keyout {key} -out {cert}")
    assert made.rc == 0, made.stderr
    (tmp_path / "hub.crt").write_text(hub.file(cert).content_string)
    address = urlsplit(hub_url)
    https_url = f"https://{address.netloc}"
    try:
        on = run_playbook(playbook, *hub_only, extra_vars=tls)
        assert on.returncode == 0, (on.stdout + on.stderr)[-3000:]
        # Trusting that certificate alone: the hub serves it (the name is the container's, the URL an address).
        context = ssl.create_default_context(cafile=str(tmp_path / "hub.crt"))
        context.check_hostname = False
        status, api = hub_api(https_url, context)
        assert status == 200 and "version" in api, api
        with pytest.raises(Exception):
            hub_api(hub_url)
    finally:
        off = run_playbook(playbook, *hub_only)
        hub.run(f"rm -f {cert} {key}")
    assert off.returncode == 0, (off.stdout + off.stderr)[-3000:]
    assert hub_api(hub_url)[0] == 200
