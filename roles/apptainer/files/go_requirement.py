#!/usr/bin/env python3
"""Read what Go an Apptainer source needs, or which Go a Go release archive holds.

  go_requirement.py source PATH      PATH: release tarball or unpacked source directory
  go_requirement.py go-archive PATH  PATH: go.dev-style archive (go/ at the top)

Prints one JSON object. The source's need is the highest of the minimums Go and mconfig
enforce: mconfig's hstgo_version, go.mod's `go` line and every `## explicit; go` line of
vendor/modules.txt (Go refuses a vendored module that declares a newer Go than itself).
Runs on the Ansible controller and on the build host: standard library only.
"""
import json
import re
import sys
import tarfile
from pathlib import Path

SOURCE_FILES = ("mconfig", "go.mod", "vendor/modules.txt")
PATTERNS = {
    "mconfig": re.compile(r'^hstgo_version="?(\d+\.\d+(?:\.\d+)?)', re.MULTILINE),
    "go.mod": re.compile(r"^go\s+(\d+\.\d+(?:\.\d+)?)\s*$", re.MULTILINE),
    "vendor/modules.txt": re.compile(r"^## explicit; go (\d+\.\d+(?:\.\d+)?)\s*$", re.MULTILINE),
}
MODULE_LINE = re.compile(r"^# (\S+) ", re.MULTILINE)


def version_key(version):
    parts = [int(p) for p in version.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def requirements(name, text):
    """(version, what declared it) for every Go minimum found in one source file."""
    if name != "vendor/modules.txt":
        return [(m.group(1), name) for m in PATTERNS[name].finditer(text)]
    found = []
    for m in PATTERNS[name].finditer(text):
        modules = MODULE_LINE.findall(text, 0, m.start())
        found.append((m.group(1), f"{name} ({modules[-1] if modules else 'unknown module'})"))
    return found


def read_source_files(path):
    """{relative name: text} of the files that declare a Go minimum, from a tarball or a directory."""
    path = Path(path)
    texts = {}
    if path.is_dir():
        for name in SOURCE_FILES:
            if (path / name).is_file():
                texts[name] = (path / name).read_text(errors="replace")
        return texts
    with tarfile.open(path) as archive:
        for member in archive:
            _top, _, rest = member.name.lstrip("./").partition("/")
            if rest in SOURCE_FILES and member.isfile() and rest not in texts:
                texts[rest] = archive.extractfile(member).read().decode(errors="replace")
                if len(texts) == len(SOURCE_FILES):
                    break
    return texts


def source_requirement(path):
    found = [req for name, text in read_source_files(path).items() for req in requirements(name, text)]
    if not found:
        return {"required": None, "declared_by": None}
    version, declared_by = max(found, key=lambda req: version_key(req[0]))
    return {"required": version, "declared_by": declared_by}


def go_archive_version(path):
    with tarfile.open(path) as archive:
        for member in archive:
            if member.name.lstrip("./") == "go/VERSION" and member.isfile():
                first_line = archive.extractfile(member).read().decode(errors="replace").splitlines()[0]
                match = re.fullmatch(r"go(\d+\.\d+(?:\.\d+)?)\S*", first_line.strip())
                return {"version": match.group(1) if match else None, "version_file": first_line.strip()}
    return {"version": None, "version_file": None}


def main(argv):
    if len(argv) != 3 or argv[1] not in ("source", "go-archive"):
        sys.stderr.write(__doc__)
        return 2
    try:
        result = source_requirement(argv[2]) if argv[1] == "source" else go_archive_version(argv[2])
    except (OSError, tarfile.TarError) as error:
        sys.stderr.write(f"{argv[2]}: {error}\n")
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
