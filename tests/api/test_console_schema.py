"""The console's typed client is generated from web/src/api/openapi.json: that file is the application's own
OpenAPI document, so the console cannot call a route the API does not have (regenerate it with
``python -m userloop.api.schema web/src/api/openapi.json``).

The document is built in a fresh interpreter: other tests add routes of their own to the application they import.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

COMMITTED = Path(__file__).resolve().parents[2] / "web" / "src" / "api" / "openapi.json"


def test_the_consoles_copy_of_the_openapi_document_is_current() -> None:
    done = subprocess.run([sys.executable, "-m", "userloop.api.schema", "--check", str(COMMITTED)],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
