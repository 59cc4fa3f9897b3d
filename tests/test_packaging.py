"""The README's install: ``python -m build`` makes a wheel and an sdist that install and run.

The package is built from a copy of the checkout, as the README says
(``python3 -m build buildbot-jira``, here with ``--no-isolation`` so that
nothing is downloaded), and each artifact is installed into a fresh virtual
environment whose ``buildbot-jira --help`` must work.

The fresh environments see this test environment's packages through a
``.pth`` file: pip then finds every dependency installed and downloads
nothing, while buildbot-jira itself comes from the artifact (the test
environment's editable install is not on the fresh one's path). They are
made without pip, and this environment's pip installs into them
(``pip --python``), which saves the seconds that ``ensurepip`` takes.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import site
import subprocess
import sys
import tarfile
import tempfile
import zipfile

from twisted.trial import unittest

from buildbot_jira import __version__

CHECKOUT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))

#: What a checkout holds that is not the project's source: never copied.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv*",
    "_trial_temp*",
    "tests.*",
    "*.egg-info",
    "build",
    "dist",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
)


def run(*command: str, cwd: str | None = None) -> str:
    """Run ``command``; its output, or a failure of the test that shows it."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout + done.stderr


def copy_checkout(destination: str) -> str:
    """A copy of the checkout's source at ``destination``, so that building leaves it alone."""
    shutil.copytree(CHECKOUT, destination, ignore=_NOT_SOURCE)
    return destination


def fresh_venv(path: str) -> str:
    """A new virtual environment at ``path`` that sees this one's packages; its python."""
    run(sys.executable, "-m", "venv", "--without-pip", path)
    python = os.path.join(path, "bin", "python")
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    with open(os.path.join(purelib.strip(), "test-environment.pth"), "w", encoding="utf-8") as file:
        # Plain paths, not site.addsitedir: this environment's own .pth files
        # (its editable install of buildbot-jira) stay out.
        file.write("\n".join(site.getsitepackages()) + "\n")
    return python


def pip_install(python: str, *requirements: str, deps: bool = True, cwd: str | None = None) -> str:
    """``pip install`` into the environment of ``python``, offline; pip's output."""
    offline = ["--no-index", "--no-build-isolation", "--disable-pip-version-check"]
    extra = [] if deps else ["--no-deps"]
    pip = [sys.executable, "-m", "pip", "--python", python, "install"]
    return run(*pip, *offline, *extra, *requirements, cwd=cwd)


def installed_from(python: str) -> str:
    """Where the environment of ``python`` imports buildbot_jira from."""
    # Not from the checkout: "python -c" would import from the current directory.
    code = "import buildbot_jira; print(buildbot_jira.__file__)"
    return run(python, "-c", code, cwd=os.path.dirname(python)).strip()


class BuildTests(unittest.TestCase):
    """One build of the copied checkout (for the whole class), then its artifacts."""

    timeout = 180
    root: str
    sdist: str
    wheel: str

    @classmethod
    def setUpClass(cls) -> None:
        if importlib.util.find_spec("build") is None:
            raise unittest.SkipTest("needs the build package (the test extra installs it)")
        cls.root = tempfile.mkdtemp(prefix="buildbot-jira-packaging-")
        source = copy_checkout(os.path.join(cls.root, "buildbot-jira"))
        dist = os.path.join(cls.root, "dist")
        run(sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, source)
        names = sorted(os.listdir(dist))
        if len(names) != 2 or not names[0].endswith(".tar.gz") or not names[1].endswith(".whl"):
            raise AssertionError(f"python -m build made {names}, not one sdist and one wheel")
        cls.sdist, cls.wheel = (os.path.join(dist, name) for name in names)

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.root, ignore_errors=True)

    def test_the_artifacts_are_named_as_the_readme_says(self) -> None:
        self.assertEqual(
            os.path.basename(self.wheel), f"buildbot_jira-{__version__}-py3-none-any.whl"
        )
        with open(os.path.join(CHECKOUT, "README.rst"), encoding="utf-8") as file:
            self.assertIn(f"dist/{os.path.basename(self.wheel)}[www]", file.read())

    def expected_package_data(self) -> set[str]:
        schemas = os.path.join(CHECKOUT, "buildbot_jira", "simulator", "schemas")
        names = {f"buildbot_jira/simulator/schemas/{name}" for name in os.listdir(schemas)}
        self.assertTrue(names)
        return {"buildbot_jira/py.typed", *names}

    def test_the_sdist_holds_the_schemas_and_the_type_marker(self) -> None:
        with tarfile.open(self.sdist) as archive:
            top = os.path.basename(self.sdist).removesuffix(".tar.gz")
            names = {name.removeprefix(top + "/") for name in archive.getnames()}
        self.assertLessEqual(self.expected_package_data(), names)
        self.assertLessEqual({"README.rst", "setup.cfg", "pyproject.toml"}, names)

    def test_the_wheel_holds_the_package_data_and_the_entry_points(self) -> None:
        with zipfile.ZipFile(self.wheel) as archive:
            names = set(archive.namelist())
            (entry_points,) = [name for name in names if name.endswith("entry_points.txt")]
            points = archive.read(entry_points).decode()
            (metadata,) = [name for name in names if name.endswith(".dist-info/METADATA")]
            requires = archive.read(metadata).decode()
        self.assertLessEqual(self.expected_package_data(), names)
        self.assertIn("buildbot-jira = buildbot_jira.tools.cli:main", points)
        self.assertIn("JiraBuildReporter = buildbot_jira.reporters:JiraBuildReporter", points)
        self.assertIn("JiraDeploymentGate = buildbot_jira.steps:JiraDeploymentGate", points)
        # The www extra brings Buildbot's web UI.
        self.assertIn("Provides-Extra: www", requires)
        self.assertIn('Requires-Dist: buildbot-www>=4.0; extra == "www"', requires)

    def test_the_wheel_and_the_sdist_install_and_run(self) -> None:
        for artifact in (self.wheel, self.sdist):
            with self.subTest(artifact=os.path.basename(artifact)):
                venv = os.path.join(self.root, "venv-" + os.path.basename(artifact))
                python = fresh_venv(venv)
                pip_install(python, artifact, deps=False)
                self.assertTrue(installed_from(python).startswith(venv), installed_from(python))
                command = os.path.join(venv, "bin", "buildbot-jira")
                output = run(command, "--help")
                self.assertIn("usage: buildbot-jira", output)
                for name in ("demo", "check", "simulate"):
                    self.assertIn(name, output)
                # The schemas are found where the simulator reads them.
                run(
                    python,
                    "-c",
                    "from buildbot_jira.simulator.contract import request_schema; "
                    "assert request_schema('builds')",
                    cwd=venv,
                )
