"""loadgen_deps.py: makes bench/requirements.txt importable for loadgen.

The packages go to a folder of their own, build/loadgen-py<X><Y>/ (one
per Python version, git-ignored, like every build output), installed
with `python3 -m pip install --target` from PyPI's binary wheels, never
into the system's site-packages.  The one idea to know: the folder is
stamped with the sha256 of requirements.txt, so editing the pins makes
the next run install the new set, and a lock file keeps two runs (a test
and a benchmark) from installing at once.  LOADGEN_DEPS=DIR overrides the
folder; LOADGEN_DEPS=system uses the numpy and matplotlib Python already
has (a machine with no route to PyPI: numpy's legacy RandomState, which
the generator draws from, gives the same stream in every version).
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REQUIREMENTS = os.path.join(HERE, "requirements.txt")


def deps_dir():
    d = os.environ.get("LOADGEN_DEPS")
    if d:
        return os.path.abspath(d)
    v = sys.version_info
    return os.path.join(ROOT, "build", "loadgen-py%d%d" % (v.major, v.minor))


def _stamp():
    with open(REQUIREMENTS, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _stamped(d):
    try:
        with open(os.path.join(d, ".requirements-sha256")) as f:
            return f.read().strip() == _stamp()
    except OSError:
        return False


def _install(d):
    os.makedirs(os.path.dirname(d), exist_ok=True)
    with open(d + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _stamped(d):
            return
        tmp = d + ".tmp%d" % os.getpid()
        shutil.rmtree(tmp, ignore_errors=True)
        sys.stderr.write("loadgen: installing %s into %s (once)\n"
                         % (os.path.relpath(REQUIREMENTS),
                            os.path.relpath(d)))
        cmd = [sys.executable, "-m", "pip", "install", "--quiet",
               "--disable-pip-version-check", "--no-warn-script-location",
               "--no-deps", "--only-binary=:all:", "--target", tmp,
               "-r", REQUIREMENTS]
        env = dict(os.environ, PIP_ROOT_USER_ACTION="ignore")
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, env=env)
        if r.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise SystemExit("loadgen: `%s` failed (exit %d); install the "
                             "packages of %s by hand or set LOADGEN_DEPS"
                             % (" ".join(cmd), r.returncode, REQUIREMENTS))
        with open(os.path.join(tmp, ".requirements-sha256"), "w") as f:
            f.write(_stamp() + "\n")
        shutil.rmtree(d, ignore_errors=True)
        os.rename(tmp, d)


def ensure():
    """Puts the pinned packages on sys.path, installing them if needed."""
    if os.environ.get("LOADGEN_DEPS") == "system":
        os.environ.setdefault("MPLBACKEND", "Agg")
        return
    d = deps_dir()
    if not _stamped(d):
        _install(d)
    if d not in sys.path:
        sys.path.insert(0, d)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(d, ".mplconfig"))
