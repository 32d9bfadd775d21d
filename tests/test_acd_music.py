"""Queue music the switch cannot play (issue 14 point 5, fixture 07 case D): the caller hears a
tone instead of silence and the engine does not re-execute the failing playback in a loop."""
import gevent
import pytest

from engine.call.live import MUSIC_FALLBACK
from tests.acdfix import AcdRig, agent, queue, wait_for


@pytest.fixture
def rig(tmp_path, redis_server, redis_prefix):
    r = AcdRig(tmp_path, redis_server.url, redis_prefix, [agent("1001")],
               [queue("general", music="local_stream://moh", no_agents="wait",
                      announce={"every_seconds": 60, "position": False, "expected_wait": False})])
    yield r
    r.stop()


def test_a_queue_whose_music_is_missing_plays_a_tone_and_does_not_spin(rig):
    rig.switch.modules.discard("mod_local_stream")     # a switch without the music module
    executes = []

    def count(pairs, body):
        d = dict(pairs)
        if d.get("Event-Name") == "CHANNEL_EXECUTE" and d.get("Application") == "playback":
            executes.append(d.get("Application-Data"))
    rig.switch.subscribe(count)
    caller = rig.call("13800138000")
    assert wait_for(lambda: caller.variables.get("current_application_data") == MUSIC_FALLBACK)
    gevent.sleep(0.5)                                    # a window in which a spin would show
    assert caller.alive and caller.current_app == "playback"
    assert executes == ["local_stream://moh", MUSIC_FALLBACK], executes[:5]
