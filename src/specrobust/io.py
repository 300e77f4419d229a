"""Files that are never half-written: every output goes to a temporary name first, then is renamed."""
from __future__ import annotations

import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import CheckpointError, ConfigError, DataError, SpecRobustError  # noqa: F401


def _atomic(path, write):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_savez(path, **arrays):
    _atomic(path, lambda f: np.savez(f, **arrays))


def atomic_torch_save(obj, path):
    import torch

    _atomic(path, lambda f: torch.save(obj, f))


def atomic_write_text(path, text: str):
    _atomic(path, lambda f: f.write(text.encode()))


def atomic_write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load with ``weights_only=True`` (a pickled payload cannot run); damaged files get an error naming them."""
    import torch

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(f"checkpoint {path} holds objects other than tensors and plain data "
                              f"(refused by weights_only=True): {str(err).splitlines()[0]}") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupted: {str(err).splitlines()[0]}") from None
