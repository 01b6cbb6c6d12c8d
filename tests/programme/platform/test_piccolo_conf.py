"""Importing the Piccolo configuration starts no database (every `piccolo` command imports it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_importing_piccolo_conf_starts_no_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["INSPIRE_DATA_DIR"] = str(tmp_path)
    probe = (
        "import piccolo_conf\n"
        "from piccolo.conf.apps import Finder\n"
        "import programme.app\n"
        "assert Finder().get_engine() is piccolo_conf.DB\n"
        "print(len(Finder().get_app_registry().app_configs))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "5"
    assert not (tmp_path / "pgdata").exists()
