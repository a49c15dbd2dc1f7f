"""Build glue that pyproject.toml cannot express.

Two jobs: map the top-level ``cli/`` and ``cfg/`` folders into the ``scsa_yolo`` package,
and ship ``scsa_yolo-autoload.pth`` so that a plain ``yolo`` command sees our layers
without the user importing anything (see scsa_yolo/_autoload.py for why it is safe).
"""
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

try:  # setuptools >= 64 (PEP 660 editable installs)
    from setuptools.command.editable_wheel import editable_wheel
except ImportError:  # pragma: no cover - older setuptools has no editable wheels
    editable_wheel = None

PTH_NAME = "scsa_yolo-autoload.pth"
# One line, executed by site.py at interpreter start. It only imports a tiny module that
# installs an import hook; every failure inside is swallowed there.
PTH_LINE = "import scsa_yolo._autoload\n"


class BuildPyWithPth(build_py):
    """build_py that also drops the autoload .pth at the root of the wheel."""

    def run(self):
        super().run()
        target = Path(self.build_lib) / PTH_NAME
        target.write_text(PTH_LINE)

    def get_outputs(self, include_bytecode=True):
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / PTH_NAME)]

    def get_output_mapping(self):
        mapping = dict(super().get_output_mapping())
        mapping[str(Path(self.build_lib) / PTH_NAME)] = str(Path("scsa_yolo") / "_autoload.pth.in")
        return mapping


class _StrategyWithPth:
    """Wraps setuptools' editable strategy: same wheel, plus our autoload .pth."""

    def __init__(self, strategy):
        self._strategy = strategy

    def __enter__(self):
        self._strategy.__enter__()
        return self

    def __exit__(self, *exc):
        return self._strategy.__exit__(*exc)

    def __call__(self, wheel, files, mapping):
        self._strategy(wheel, files, mapping)
        wheel.writestr(PTH_NAME, PTH_LINE.encode())


cmdclass = {"build_py": BuildPyWithPth}
if editable_wheel is not None:

    class EditableWheelWithPth(editable_wheel):
        """``pip install -e .`` ships the autoload .pth too (build_py is bypassed there)."""

        def _select_strategy(self, *args, **kwargs):
            return _StrategyWithPth(super()._select_strategy(*args, **kwargs))

    cmdclass["editable_wheel"] = EditableWheelWithPth


packages = find_packages(include=["scsa_yolo", "scsa_yolo.*"])
packages += ["scsa_yolo.cli"] + [f"scsa_yolo.cli.{p}" for p in find_packages("cli")]
packages += ["scsa_yolo.cfg"]

setup(packages=packages, cmdclass=cmdclass)
