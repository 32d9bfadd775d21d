"""The engine's dial pacer keeps outbound under the switch's sessions-per-second: a campaign with
more free robot channels than the switch takes sessions a second still gets every dial through
(the simulator refuses sessions past the rate as the real switch does: engine/sim/throttle.py)."""
from engine.outbound import campaigns
from engine.outbound.db import OutboundDb
from engine.outbound.jobservice import dials_per_second
from engine.sim.pstn import Population
from tests.simfix import wait_for
from tests.enginefix import Rig
from tests.test_outbound_sim import ALWAYS_OPEN, PROMPT_CACHE, answering, flows, robot_campaign  # noqa: F401


def test_paced_dials_stay_under_the_switch_rate(tmp_path, flows, redis_server, redis_prefix):  # noqa: F811
    numbers = [f"139200000{i:02d}" for i in range(12)]
    rig = Rig(tmp_path, flows_dir=flows, paths_prompt_cache=PROMPT_CACHE,
              redis={"url": redis_server.url, "prefix": redis_prefix}, switch={"sessions_per_second": 10},
              outbound_calls={"window": ALWAYS_OPEN, "originate_timeout": 5,
                              "jobs": {"tick_seconds": 0.1, "robot_channels": len(numbers)}})
    try:
        # read from the switch.conf.xml rendered from these settings (switch.sessions_per_second)
        assert rig.switch.sessions_per_second == rig.settings.switch.sessions_per_second == 10
        assert dials_per_second(rig.settings) == 2           # 0.3 of the 9 a window admits
        rig.switch.population = Population()
        answering(rig.switch.population, numbers)
        db = OutboundDb(rig.settings.database.url).open()
        robot_campaign(db, flows, numbers)
        wait_for(lambda: all(c["state"] == "done" for c in campaigns.contacts(db, "fu")), timeout=90)
        assert rig.switch.throttle.refused == 0
        assert all(len(rig.switch.population.phones[n].calls) == 1 for n in numbers)
    finally:
        rig.stop()
