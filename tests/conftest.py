"""The unit tests import the project's package by name (``jupyterhub_hpc``, installed in the controller's virtualenv
by scripts/bootstrap.sh, editable) and their helpers from this folder (pytest's ``pythonpath``, pyproject.toml)."""

import os

# CI explores a fixed set of examples (a red build must be reproducible); developers' runs explore new ones.
from hypothesis import settings

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
