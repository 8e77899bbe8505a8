"""TensorFlow and Keras, imported without TensorFlow's C++ start-up log (chapter 00).

On a machine without a GPU, ``import tensorflow`` and the first device query print a dozen C++
log lines straight to file descriptor 2 (``oneDNN custom operations are on``, ``Could not find
cuda drivers``, ``E0000 … failed call to cuInit: … UNKNOWN ERROR (303)``…). They are not errors,
but in JupyterLab they fill a red stderr box under the imports cell, and on a terminal they bury
what a command prints. ``TF_CPP_MIN_LOG_LEVEL`` does not hide them with TensorFlow 2.21: most are
written before TensorFlow reads it.

Every module of the course that needs TensorFlow, the command line and the chapters import it
from here::

    from ctutils.tfimport import keras, tf

The first such import sends descriptor 2 to a temporary file while TensorFlow is imported and its
devices are listed, then puts it back. What was written there is kept in :func:`startup_log`; if
the import fails (a broken installation, a missing library), it is written to stderr before the
error is raised, so real errors still surface. Set the environment variable ``CTUTILS_TF_LOGS=1``
(``python -m ctutils --verbose …`` does) to let the lines through instead.

Later log lines (while training, say) are not touched.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from types import ModuleType
from typing import Any

__all__ = ["LOG_ENV", "LOG_LINE", "import_tensorflow", "keras", "startup_log", "tf"]

#: Environment variable: ``1`` shows TensorFlow's start-up log lines instead of hiding them.
LOG_ENV = "CTUTILS_TF_LOGS"

#: A line of TensorFlow's, absl's, oneDNN's or CUDA's C++ log (what no learner should see).
LOG_LINE = re.compile(
    r"(?m)^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\]"  # absl: E0000 00:00:1795764590.39  3807 file.cc:52]
    r"|WARNING: All log messages before absl::InitializeLog\(\)"
    r"|To enable the following instructions:"
    r"|.*(?:oneDNN custom operations|Could not find cuda drivers|cuInit|cuda_platform|cpu_feature_guard))"
)

_state: dict[str, Any] = {"tf": None, "log": ""}


def _show_logs() -> bool:
    return os.environ.get(LOG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def import_tensorflow(*, show_logs: bool | None = None) -> ModuleType:
    """Import TensorFlow once, and list its devices, without its C++ start-up log lines.

    Parameters
    ----------
    show_logs : bool, optional
        Let the log lines through to stderr. Default: the environment variable
        ``CTUTILS_TF_LOGS`` (:data:`LOG_ENV`) is set to something other than ``0``.

    Returns
    -------
    module
        ``tensorflow``.

    Raises
    ------
    ImportError
        TensorFlow cannot be imported; what it wrote to stderr is written there first.
    """
    if _state["tf"] is not None:
        return _state["tf"]
    if _show_logs() if show_logs is None else show_logs:
        import tensorflow as tf

        tf.config.list_physical_devices()
        _state["tf"] = tf
        return tf
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as log:
            os.dup2(log.fileno(), 2)
            try:
                import tensorflow as tf

                tf.config.list_physical_devices()  # the CUDA probe logs "failed call to cuInit" here, once
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                log.seek(0)
                _state["log"] = log.read().decode("utf-8", errors="replace")
    except BaseException:
        sys.stderr.write(_state["log"])  # TensorFlow's own messages explain the error raised
        sys.stderr.flush()
        raise
    finally:
        os.close(saved)
    _state["tf"] = tf
    return tf


def startup_log() -> str:
    """What TensorFlow wrote to stderr while :func:`import_tensorflow` hid it ('' if nothing or not yet)."""
    return _state["log"]


def __getattr__(name: str) -> ModuleType:
    """``from ctutils.tfimport import tf`` / ``keras``: import them quietly on first use."""
    if name == "tf":
        return import_tensorflow()
    if name == "keras":
        import_tensorflow()
        import keras

        return keras
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
