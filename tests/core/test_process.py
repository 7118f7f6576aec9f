import signal
import subprocess
import sys
import time

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


def test_watch_parent_calls_back_once_the_parent_is_gone(tmp_path):
    """A middle process starts a grandchild watching it, then is SIGKILLed: the grandchild's
    callback runs (it writes a file and exits); while the middle lives, it doesn't."""
    mark = tmp_path / "orphaned"
    grandchild = (
        "import os, time; from core.process import watch_parent; "
        f"watch_parent(os.getppid(), lambda: (open({str(mark)!r}, 'w').write('gone'), os._exit(0)), 0.05); "
        "time.sleep(30)"
    )
    middle = (
        "import subprocess, sys, time; "
        f"subprocess.Popen([sys.executable, '-c', {grandchild!r}]); time.sleep(1.5); "
        f"assert not __import__('os').path.exists({str(mark)!r}); print('watched', flush=True); time.sleep(30)"
    )
    proc = subprocess.Popen([sys.executable, "-c", middle], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "watched"  # the parent alive: no callback
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 20
    while not mark.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mark.read_text() == "gone"
