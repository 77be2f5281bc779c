"""A layer network as a JSON model file: :func:`save`, :func:`load`, :func:`to_dict`,
:func:`from_dict`. Defined in :mod:`jaxbp.layers.model_file`.
"""

from __future__ import annotations

from jaxbp.layers.model_file import (
    LAYERS,
    ModelFileError,
    from_dict,
    load,
    save,
    to_dict,
)

__all__ = (
    "LAYERS",
    "ModelFileError",
    "from_dict",
    "load",
    "save",
    "to_dict",
)
