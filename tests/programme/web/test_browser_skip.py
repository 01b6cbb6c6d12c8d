"""Without Chromium the browser tests are skipped, saying why in one line, and start nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_without_chromium_the_browser_tests_skip_with_one_clear_reason(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "INSPIRE_TEST_CHROMIUM": str(tmp_path / "no-chromium-here"),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/programme/web/test_browser_base.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # 5: pytest's "no tests ran", since the whole module is skipped; never a failure.
    assert result.returncode in (0, 5), result.stdout + result.stderr
    reasons = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(reasons) == 1, result.stdout  # one line, however many tests it covers
    assert "apt-get install chromium" in reasons[0]
    assert "1 skipped" in result.stdout
