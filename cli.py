"""Dev shim: run the tistate CLI from a checkout (`python cli.py --help`) without installing it."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "wrapper"))
from tistate.cli import app

app()
