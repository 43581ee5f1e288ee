"""Exception types. Each message says what is wrong, then what to do."""

from __future__ import annotations


class CamauditError(Exception):
    """Base class of every error the plugin raises on purpose."""


class ModelLoadError(CamauditError):
    """The detector named by ``--camaudit-model`` / ``--camaudit-weights`` cannot be built or loaded."""


class ImageInputError(CamauditError):
    """An image cannot be read or is not usable (missing, corrupt, empty, wrong type)."""


class ExpectationError(CamauditError, ValueError):
    """An expectation is malformed: unknown class, degenerate or out-of-image box, bad threshold."""


class DetectorRuntimeError(CamauditError):
    """The detector raised while running on an image."""


class DatasetError(CamauditError, ValueError):
    """A dataset description cannot be used at all (a dataset YAML with bad keys or a missing split, a folder
    that is not a Pascal VOC root): the message says what to fix. Broken *entries* never raise it."""


class CamauditWarning(UserWarning):
    """Something the run can go on without is broken (e.g. an installed detector family that cannot be read)."""
