import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.fast


def test_a_child_orphaned_before_asking_is_signalled_at_once():
    # The child claims a parent it doesn't have (as if its real parent died before prctl).
    code = "from core.process import die_with_parent; die_with_parent(parent_pid=1); import time; time.sleep(30)"
    proc = subprocess.run([sys.executable, "-c", code], timeout=20)
    assert proc.returncode == -signal.SIGTERM


def test_a_child_with_its_parent_alive_keeps_running():
    code = (
        "import os; from core.process import die_with_parent; die_with_parent(parent_pid=os.getppid()); print('alive')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0 and out.stdout.strip() == "alive"
