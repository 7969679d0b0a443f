"""How much code is the collection: lines of YAML tasks and Python plugins, and how many plugins.

Usage (from the repository root; the venv's Python, which has Ansible, imports the plugins):

    .venv/bin/python benchmarks/code_size.py [DIR [DIR]]

DIR is a checkout of this repository (default: this one), e.g. a `git worktree` of an older
commit. With two, prints them side by side as a Markdown table. Counts:

* YAML lines: every line of roles/*/tasks/**/*.yml, roles/*/handlers/*.yml, playbooks/*.yml and
  site.yml;
* Python lines: every line of plugins/**/*.py;
* modules: the files plugins/modules/*.py;
* filters and Jinja tests: the functions that FilterModule.filters() and TestModule.tests() of
  plugins/filter/*.py and plugins/test/*.py register, imported as ansible_collections.hpc.slurm
  through the checkout's collections/ directory (as tests/conftest.py does).
"""
import importlib
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
YAML = ["roles/*/tasks/**/*.yml", "roles/*/handlers/*.yml", "playbooks/*.yml", "site.yml"]


def lines(checkout, patterns):
    files = {path for pattern in patterns for path in checkout.glob(pattern)}
    return sum(len(path.read_text().splitlines()) for path in files)


def registered(checkout, kind, class_name, method):
    """How many functions the plugins of plugins/<kind>/*.py register."""
    # Each checkout is its own ansible_collections.hpc.slurm: forget the one imported before.
    for name in [name for name in sys.modules if name.startswith("ansible_collections")]:
        del sys.modules[name]
    sys.path.insert(0, str(checkout / "collections"))
    try:
        count = 0
        for path in sorted((checkout / "plugins" / kind).glob("*.py")):
            if path.name == "__init__.py":
                continue
            module = importlib.import_module(f"ansible_collections.hpc.slurm.plugins.{kind}.{path.stem}")
            count += len(getattr(getattr(module, class_name)(), method)())
        return count
    finally:
        sys.path.remove(str(checkout / "collections"))


def revision(checkout):
    """The checkout's commit, and whether its work tree differs from it."""
    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    status = subprocess.run(["git", "-C", str(checkout), "status", "--porcelain"],
                            capture_output=True, text=True).stdout.strip()
    return f"{commit} + uncommitted changes" if status else commit


def sizes(checkout):
    return {
        "YAML lines (tasks, handlers, playbooks)": lines(checkout, YAML),
        "Python lines (plugins)": lines(checkout, ["plugins/**/*.py"]),
        "modules": len([path for path in (checkout / "plugins" / "modules").glob("*.py")
                        if path.name != "__init__.py"]),
        "filters": registered(checkout, "filter", "FilterModule", "filters"),
        "Jinja tests": registered(checkout, "test", "TestModule", "tests"),
    }


def main():
    checkouts = [Path(arg).resolve() for arg in sys.argv[1:]] or [REPO]
    if len(checkouts) > 2:
        sys.exit(__doc__.split("\n\n")[1])
    for checkout in checkouts:
        if not (checkout / "galaxy.yml").is_file():
            sys.exit(f"{checkout}: not a checkout of this collection (no galaxy.yml)")
    figures = [sizes(checkout) for checkout in checkouts]
    if len(checkouts) == 1:
        print(f"{checkouts[0]} ({revision(checkouts[0])})")
        for name, value in figures[0].items():
            print(f"  {name}: {value}")
        return
    print(f"| | {checkouts[0]} ({revision(checkouts[0])}) | {checkouts[1]} ({revision(checkouts[1])}) |")
    print("|---|---:|---:|")
    for name in figures[0]:
        print(f"| {name} | {figures[0][name]} | {figures[1][name]} |")


if __name__ == "__main__":
    main()
