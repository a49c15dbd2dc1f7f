"""Executed at interpreter start by ``scsa_yolo-autoload.pth``: arrange that Ultralytics
sees our layers, without importing anything heavy now.

Every Python start-up runs this (site.py executes ``import`` lines in ``.pth`` files), so it
must be cheap and must never fail:

* it imports only ``sys`` and ``os`` and installs a ``sys.meta_path`` finder; torch and
  ultralytics are not imported here;
* the finder reacts to exactly one module, ``ultralytics.nn.tasks``: it wraps that module's
  loader so that right after the module has executed,
  :func:`scsa_yolo.integration.ultralytics.register` runs on it. Anything importing
  ultralytics -- the ``yolo`` command, a DDP worker spawned by Ultralytics, user code --
  therefore finds the layers registered;
* every exception inside the hook is swallowed (ultralytics' own import errors pass
  through unchanged); ``SCSA_YOLO_DEBUG=1`` prints the first one to stderr;
* ``SCSA_YOLO_NO_AUTOLOAD=1`` disables the hook; then call
  :func:`scsa_yolo.integration.register` yourself.
"""

import os
import sys

TARGET = "ultralytics.nn.tasks"
DISABLE_ENV = "SCSA_YOLO_NO_AUTOLOAD"
DEBUG_ENV = "SCSA_YOLO_DEBUG"

_reported = False


def _report(what):
    """Print the current exception once when debugging; never raises."""
    global _reported
    try:
        if _reported or not os.environ.get(DEBUG_ENV):
            return
        _reported = True
        import traceback

        sys.stderr.write(f"scsa-yolo autoload: {what} failed (Ultralytics will not see the scsa-yolo layers):\n")
        traceback.print_exc(file=sys.stderr)
    except BaseException:
        pass


class _RegisteringLoader:
    """Delegates to the real loader; after ``exec_module`` registers our layers."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):  # get_source, get_code, is_package, ... stay the real loader's
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)  # ultralytics' own errors must surface unchanged
        try:
            from scsa_yolo.integration.ultralytics import register

            register(module)
        except Exception:
            _report("registering with ultralytics.nn.tasks")


class _TasksFinder:
    """Meta-path finder that only answers for ``ultralytics.nn.tasks``."""

    scsa_yolo_autoload = True

    def find_spec(self, fullname, path=None, target=None):
        if fullname != TARGET:
            return None
        try:
            for finder in sys.meta_path:
                if getattr(finder, "scsa_yolo_autoload", False):
                    continue
                find_spec = getattr(finder, "find_spec", None)
                if find_spec is None:
                    continue
                spec = find_spec(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _RegisteringLoader(spec.loader)
            return spec
        except Exception:
            _report("finding ultralytics.nn.tasks")
            return None

    def invalidate_caches(self):
        pass


def install():
    """Install the finder once (no-op when disabled or already installed)."""
    try:
        if os.environ.get(DISABLE_ENV, "").strip() not in ("", "0"):
            return
        if any(getattr(finder, "scsa_yolo_autoload", False) for finder in sys.meta_path):
            return
        sys.meta_path.insert(0, _TasksFinder())
    except Exception:
        _report("installing the import hook")


install()
