import pytest

from batch_layer.lander.position import PartitionState, load_state, save_state
from core.lake.storage import FileStorage

pytestmark = pytest.mark.fast


def test_same_topic_id_keeps_the_state():
    s = PartitionState("id1", base=0, next=42)
    assert s.for_topic_id("id1") is s


def test_new_topic_id_starts_a_generation_after_everything_landed():
    assert PartitionState("id1", base=100, next=42).for_topic_id("id2") == PartitionState("id2", base=142)
    # An interrupted batch may have written files up to intent[1]: the next base is past it.
    s = PartitionState("id1", base=0, next=10, intent=[10, 59])
    assert s.for_topic_id("id2").base == 60


def test_roundtrip_through_the_store(tmp_path):
    store = FileStorage(tmp_path)
    assert load_state(store, "pixel.raw", 3, "id1") == PartitionState("id1")
    save_state(store, "pixel.raw", 3, PartitionState("id1", base=5, next=7, intent=[7, 9]))
    assert load_state(store, "pixel.raw", 3, "id1") == PartitionState("id1", 5, 7, [7, 9])
    assert load_state(store, "pixel.raw", 3, "id2") == PartitionState("id2", base=15)
