#!/usr/bin/env python3
"""Tell whether only root can change what lies at each of the given paths.

  root_only_paths.py SETTING=PATH ...

Root unpacks and runs what the build leaves in these directories, so every directory on the
way to each of them (as written and with symbolic links resolved) must be owned by root and
writable by no one else, and so must the path itself where it already exists. A path or
parent that does not exist yet is fine: root creates it. Prints one JSON object:
{"problems": [{"setting": ..., "path": ..., "problem": ...}, ...]}.
Runs on the build host: standard library only.
"""
import json
import os
import stat
import sys


def chain(path):
    """The path's directories from / down to the path itself."""
    parts = [part for part in path.split("/") if part]
    return ["/"] + ["/" + "/".join(parts[:index]) for index in range(1, len(parts) + 1)]


def problem_of(path):
    """Why someone other than root could change `path` (None when only root can)."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        return "cannot be examined (%s)" % (error.strerror or error)
    if status.st_uid != 0:
        return "is owned by uid %d, not root" % status.st_uid
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "is writable by users other than root (mode %04o)" % stat.S_IMODE(status.st_mode)
    return None


def problems(setting, path):
    if not path.startswith("/") or "/../" in path + "/" or "/./" in path + "/":
        return [{"setting": setting, "path": path, "problem": "is not an absolute path without . or .. parts"}]
    found = []
    for candidate in dict.fromkeys(chain(path) + chain(os.path.realpath(path))):
        why = problem_of(candidate)
        if why:
            found.append({"setting": setting, "path": candidate, "problem": why})
    return found


def main(argv):
    settings = [argument.partition("=") for argument in argv[1:]]
    if not settings or any(not separator for _name, separator, _path in settings):
        sys.stderr.write(__doc__)
        return 2
    print(json.dumps({"problems": [found for name, _sep, path in settings for found in problems(name, path)]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
