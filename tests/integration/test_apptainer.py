"""Apptainer built once and installed on every host: versions, one build, SIF images, jobs, bad input."""
import re
import shlex
import subprocess
import tempfile
import uuid
from pathlib import Path

import jinja2
import pytest
import yaml

pytestmark = pytest.mark.apptainer

REPO = Path(__file__).resolve().parents[2]
ROLE_DEFAULTS = yaml.safe_load((REPO / "roles/apptainer/defaults/main.yml").read_text())
JOB_USER = "hpcuser"
SANDBOX = "/tmp/hpc-slurm-sandbox"
# Not under /tmp: systemd mounts a tmpfs there, which `docker cp` does not see.
IMAGE = "/var/tmp/hpc-slurm-test.sif"
MARKER_IN_IMAGE = "/etc/hpc-slurm-image-marker"
# Programs copied from the host, with their libraries, into the image's /bin.
IMAGE_PROGRAMS = ("sh", "cat", "uname", "id")


@pytest.fixture(scope="module", autouse=True)
def apptainer_enabled(cluster):
    assert any(vars_.get("apptainer_enabled") for vars_ in cluster["hostvars"].values()), \
        "these tests run in molecule/apptainer, which enables the role"


@pytest.fixture(scope="module")
def setting(cluster):
    """A role setting as the role sees it: inventory value, else the role default (rendered)."""
    inventory = cluster["hostvars"][cluster["all"][0]]

    def get(name):
        value = inventory.get(name, ROLE_DEFAULTS[name])
        if isinstance(value, str) and "{{" in value:
            value = jinja2.Template(value).render(**{**ROLE_DEFAULTS, **inventory}, groups=cluster)
        return value

    return get


@pytest.fixture(scope="module")
def build_host(setting, all_hosts):
    name = setting("apptainer_build_host")
    return next(h for h in all_hosts if h.backend.name == name)


@pytest.fixture(scope="module")
def other_hosts(build_host, all_hosts):
    return [h for h in all_hosts if h.backend.name != build_host.backend.name]


def as_user(user, command):
    return f"runuser -u {user} -- {command}" if user != "root" else command


def installed_files(host, setting):
    prefix = setting("apptainer_prefix")
    return host.check_output(
        f"sha256sum {prefix}/bin/apptainer {prefix}/libexec/apptainer/bin/starter "
        f"{prefix}/libexec/apptainer/hpc-slurm-build"
    )


def copy_between_containers(source, path, targets):
    """No shared file system in the test bed: copy a file through the machine running docker."""
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(scratch) / Path(path).name
        subprocess.run(["docker", "cp", f"{source}:{path}", str(local)], check=True)
        for target in targets:
            subprocess.run(["docker", "cp", str(local), f"{target}:{path}"], check=True)


@pytest.fixture(scope="module")
def image(controller, computes):
    """A SIF made on the controller from a local directory (no registry), copied to every compute node."""
    token = uuid.uuid4().hex
    copy_programs = " ".join(IMAGE_PROGRAMS)
    script = f"""
        set -e
        rm -rf {SANDBOX} && mkdir -p {SANDBOX}/bin {SANDBOX}/etc {SANDBOX}/tmp
        for program in {copy_programs}; do
          binary=$(readlink -f "$(command -v "$program")")
          cp "$binary" {SANDBOX}/bin/"$program"
          for library in $(ldd "$binary" | awk '/\\// {{ print $(NF-1) }}'); do
            cp --parents -L "$library" {SANDBOX}/
          done
        done
        echo {token} > {SANDBOX}{MARKER_IN_IMAGE}
        # Apptainer adds the calling user to these (config passwd/group = yes).
        echo 'root:x:0:0:root:/root:/bin/sh' > {SANDBOX}/etc/passwd
        echo 'root:x:0:' > {SANDBOX}/etc/group
        apptainer build --force {IMAGE} {SANDBOX}
        chmod 0644 {IMAGE}
    """
    built = controller.run(f"bash -c {shlex.quote(script)}")
    assert built.rc == 0, built.stdout + built.stderr
    copy_between_containers(controller.backend.name, IMAGE, [h.backend.name for h in computes])
    return token


def node_name(host):
    return host.check_output("uname -n")


def test_every_host_runs_the_pinned_version(all_hosts, setting):
    for host in all_hosts:
        assert host.check_output("apptainer --version") == f"apptainer version {setting('apptainer_version')}"


def test_every_host_has_the_same_build(all_hosts, setting):
    assert len({installed_files(host, setting) for host in all_hosts}) == 1


def test_only_the_build_host_compiled(build_host, other_hosts, setting):
    go_binary = f"{setting('apptainer_go_dir')}/bin/go"
    build_dir = setting("apptainer_build_dir")
    assert build_host.file(go_binary).exists
    assert build_host.exists("gcc")
    packed = build_host.check_output(f"ls {build_dir}")
    assert re.search(r"^apptainer-.*\.tar\.gz$", packed, re.MULTILINE), packed
    assert re.search(r"^apptainer-.*\.sha256$", packed, re.MULTILINE), packed
    directory = build_host.file(build_dir)
    assert (directory.user, directory.mode) == ("root", 0o700)
    assert build_host.file(f"{setting('apptainer_go_dir')}/hpc-slurm-go").contains(
        f"from archive sha256 {setting('apptainer_go_archive_sha256')}")
    for host in other_hosts:
        assert not host.file(go_binary).exists, host.backend.name
        assert not host.exists("gcc"), host.backend.name
        assert not host.file(build_dir).exists, host.backend.name


def test_apptainer_conf_is_upstream_defaults_with_the_inventory_settings(all_hosts, setting):
    def as_lines(config):
        lines = []
        for key, value in config.items():
            for item in value if isinstance(value, list) else [value]:
                if item is not None:
                    lines.append(f"{key} = {'yes' if item is True else 'no' if item is False else item}")
        return sorted(lines)

    wanted = as_lines({**setting("apptainer_config_defaults"), **setting("apptainer_config")})
    assert "root default capabilities = file" in wanted  # what molecule/apptainer sets
    conf_dir = f"{setting('apptainer_sysconfdir')}/apptainer"
    for host in all_hosts:
        text = host.file(f"{conf_dir}/apptainer.conf").content_string
        assert sorted(line for line in text.splitlines() if line and not line.startswith("#")) == wanted
        assert host.file(f"{conf_dir}/apptainer.conf.upstream").contains("root default capabilities")


@pytest.mark.parametrize("user", ["root", JOB_USER])
def test_a_sif_built_from_a_local_directory_runs(controller, image, user, job_user):
    ran = controller.run(as_user(user, f"apptainer exec {IMAGE} sh -c 'cat {MARKER_IN_IMAGE}; id -un'"))
    assert ran.rc == 0, ran.stderr
    assert ran.stdout.split() == [image, user]


@pytest.mark.parametrize("user", ["root", JOB_USER])
def test_srun_runs_the_container_on_every_compute_node(controller, computes, image, user, job_user):
    inside = f'echo "$(uname -n) $(cat {MARKER_IN_IMAGE})"'
    command = (f"srun --nodes={len(computes)} --ntasks-per-node=1 --chdir=/tmp "
               f"apptainer exec {IMAGE} sh -c {shlex.quote(inside)}")
    ran = controller.run(as_user(user, command))
    assert ran.rc == 0, ran.stderr
    assert sorted(ran.stdout.splitlines()) == sorted(f"{node_name(h)} {image}" for h in computes)


BAD_INPUT = {
    "wrong checksum": (
        {"apptainer_source_sha256": "0" * 64},
        "but apptainer_source_sha256 is " + "0" * 64,
    ),
    "missing source file": (
        {"apptainer_source": "/nonexistent/apptainer-1.4.6.tar.gz"},
        "/nonexistent/apptainer-1.4.6.tar.gz is not a file on the Ansible controller",
    ),
    "Go too old": (
        {"apptainer_go_version": "1.22.5",
         "apptainer_go_archive": "https://go.example.invalid/dl/go1.22.5.linux-amd64.tar.gz",
         "apptainer_go_archive_sha256": "1" * 64},
        "Go 1.22.5 is too old for Apptainer",
    ),
    # Above upstream's minimum for 1.4.x (1.23.6) but below what this tarball's vendored
    # modules declare (go 1.26.0 in vendor/modules.txt): only reading the tarball catches it.
    "build directory under /var/tmp": (
        {"apptainer_build_dir": "/var/tmp/hpc-slurm-apptainer"},
        "apptainer_build_dir: on {build_host}, /var/tmp is writable by users other than root (mode 1777)",
    ),
    "Go directory under /tmp": (
        {"apptainer_go_dir": "/tmp/go-1.26"},
        "apptainer_go_dir: on {build_host}, /tmp is writable by users other than root (mode 1777)",
    ),
    "GOPATH and GOCACHE outside the build directory": (
        {"apptainer_build_environment": {"GOPATH": "/usr/local", "GOCACHE": "/root"}},
        "apptainer_build_environment.GOPATH is '/usr/local': GOPATH, GOCACHE and GOMODCACHE may only name directories "
        "inside apptainer_build_dir",
    ),
    "GOCACHE climbing out of the build directory": (
        {"apptainer_build_environment": {"GOCACHE": "/var/lib/hpc-slurm/apptainer/../../../../root"}},
        "apptainer_build_environment.GOCACHE is '/var/lib/hpc-slurm/apptainer/../../../../root'",
    ),
    "GOTOOLCHAIN that downloads": (
        {"apptainer_build_environment": {"GOTOOLCHAIN": "auto"}},
        "apptainer_build_environment.GOTOOLCHAIN is 'auto': only 'local' is allowed",
    ),
    "GOFLAGS that downloads modules": (
        {"apptainer_build_environment": {"GOFLAGS": "-trimpath -mod=mod"}},
        "apptainer_build_environment.GOFLAGS is '-trimpath -mod=mod': -mod may only be -mod=vendor",
    ),
    "relative source path": (
        {"apptainer_source": "apptainer-1.4.5.tar.gz"},
        "apptainer_source is 'apptainer-1.4.5.tar.gz', a relative path",
    ),
    "newline in a default apptainer.conf value": (
        {"apptainer_config_defaults": {"allow setuid": "no\nbind path = /"}},
        'apptainer_config_defaults["allow setuid"] is "no\\nbind path = /"',
    ),
    "Go older than the tarball's modules": (
        {"apptainer_go_version": "1.25.7",
         "apptainer_go_archive": "https://go.example.invalid/dl/go1.25.7.linux-amd64.tar.gz",
         "apptainer_go_archive_sha256": "2" * 64},
        "Go 1.25.7 is too old for Apptainer 1.4.5: it needs Go >= 1.26.0",
    ),
}


def plays_started(stdout):
    return re.findall(r"^PLAY \[(.*?)\]", stdout, re.MULTILINE)


def recap(stdout):
    return dict(re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", stdout, re.MULTILINE))


@pytest.mark.reruns
@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_refused_before_any_change(case, run_playbook, all_hosts, controller, image, setting):
    extra_vars, message = BAD_INPUT[case]
    message = message.replace("{build_host}", setting("apptainer_build_host"))
    conf = f"{setting('apptainer_sysconfdir')}/apptainer/apptainer.conf"
    before = [installed_files(h, setting) + h.check_output(f"sha256sum {conf}") for h in all_hosts]
    result = run_playbook("site.yml", extra_vars=extra_vars)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in " ".join(output.split()), output
    changed = recap(result.stdout)
    assert changed and set(changed.values()) == {"0"}, changed
    assert "TASK [hpc.slurm.munge : Install munge]" not in result.stdout
    assert [installed_files(h, setting) + h.check_output(f"sha256sum {conf}") for h in all_hosts] == before
    still = controller.run(f"apptainer exec {IMAGE} cat {MARKER_IN_IMAGE}")
    assert (still.rc, still.stdout.strip()) == (0, image), still.stderr


def rerun_after_losing_apptainer(run_playbook, computes, build_host, setting):
    """Remove Apptainer from the last compute node and run site.yml; (that node, the build
    host's installed files, the run)."""
    lost = computes[-1]
    reference = installed_files(build_host, setting)
    prefix = setting("apptainer_prefix")
    lost.run_expect([0], f"rm -f {prefix}/bin/apptainer {prefix}/libexec/apptainer/hpc-slurm-build")
    result = run_playbook("site.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    return lost, reference, result


@pytest.mark.reruns
def test_a_host_that_lost_apptainer_gets_the_packed_build_without_a_compile(
    run_playbook, computes, all_hosts, build_host, setting
):
    lost, reference, result = rerun_after_losing_apptainer(run_playbook, computes, build_host, setting)
    assert "Compile Apptainer" not in result.stdout
    changed = recap(result.stdout)
    assert {name for name, count in changed.items() if count != "0"} == {lost.backend.name}, changed
    assert installed_files(lost, setting) == reference


@pytest.mark.reruns
def test_a_url_whose_sha256_differs_stops_the_run_before_munge_or_slurm(run_playbook, all_hosts, setting):
    """The build host downloads and checks a URL in the check play, before any play that changes hosts."""
    conf = f"{setting('apptainer_sysconfdir')}/apptainer/apptainer.conf"
    before = [installed_files(h, setting) + h.check_output(f"sha256sum {conf}") for h in all_hosts]
    result = run_playbook("site.yml", extra_vars={"apptainer_source": "file:///etc/hostname",
                                                  "apptainer_source_sha256": "3" * 64})
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert "apptainer_source file:///etc/hostname: The checksum for" in output, output
    assert "did not match " + "3" * 64 in output, output
    # Nothing after site.yml's check play (munge, Slurm and this role change hosts only later).
    assert plays_started(result.stdout)[-1] == "Check every setting before changing any host", result.stdout
    assert [installed_files(h, setting) + h.check_output(f"sha256sum {conf}") for h in all_hosts] == before


@pytest.mark.reruns
def test_a_go_binary_changed_since_the_role_unpacked_it_is_refused(run_playbook, build_host, setting):
    go_binary = f"{setting('apptainer_go_dir')}/bin/go"
    build_host.run_expect([0], f"cp -a {go_binary} {go_binary}.kept && printf '\\0' >> {go_binary}")
    try:
        result = run_playbook("site.yml")
    finally:
        build_host.run_expect([0], f"mv -f {go_binary}.kept {go_binary}")
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert f"apptainer_go_dir {setting('apptainer_go_dir')} on {build_host.backend.name} holds a Go toolchain " \
           "without a matching record" in output, output
    # Nothing after site.yml's check play (munge, Slurm and this role change hosts only later).
    assert plays_started(result.stdout)[-1] == "Check every setting before changing any host", result.stdout


@pytest.mark.reruns
def test_a_packed_build_changed_on_the_controller_is_fetched_again_not_installed(
    run_playbook, computes, build_host, setting
):
    """Whatever replaced the controller's copy never reaches a host: it no longer matches its recorded sha256."""
    cache = Path(setting("apptainer_controller_cache_dir"))
    package = next(cache.glob("apptainer-*.tar.gz"))
    recorded = package.with_name(package.name[:-len(".tar.gz")] + ".sha256").read_text()
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "etc").mkdir()
        (Path(scratch) / "etc" / "hpc-slurm-planted").write_text("planted\n")
        subprocess.run(["tar", "-C", scratch, "-czf", str(package), "."], check=True)
    lost, reference, result = rerun_after_losing_apptainer(run_playbook, computes, build_host, setting)
    # build.yml runs, to fetch the build host's whole copy again, but compiles nothing.
    compiled = re.findall(r"^TASK \[hpc\.slurm\.apptainer : Compile Apptainer\] \**\n(\w+)", result.stdout, re.MULTILINE)
    assert compiled == ["skipping"], compiled
    assert not lost.file("/etc/hpc-slurm-planted").exists
    assert installed_files(lost, setting) == reference
    assert subprocess.run(["sha256sum", "--check", "--quiet", "-"], input=recorded, text=True, cwd=cache).returncode == 0
