import os

import pytest

from pixel_api.salt import DailySalt

pytestmark = pytest.mark.fast
DAY = 86_400_000


def test_one_salt_per_day_shared_by_instances(tmp_path):
    a, b = DailySalt(tmp_path), DailySalt(tmp_path)
    assert a.for_ms(10 * DAY) == b.for_ms(10 * DAY + 5)
    assert a.for_ms(10 * DAY) != a.for_ms(11 * DAY)
    assert oct(os.stat(tmp_path).st_mode)[-3:] == "700"


def test_old_salts_are_destroyed(tmp_path):
    s = DailySalt(tmp_path)
    for day in range(10, 15):
        s.for_ms(day * DAY)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2  # today and yesterday only
