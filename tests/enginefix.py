"""An engine and a simulated FreeSWITCH, talking over loopback TCP, for daemon-level tests."""
from engine.daemon import Engine
from engine.fsconf.render import render
from engine.infra.netutil import free_port
from engine.settings import default_settings
from engine.sim.switch import Switch

PASSWORD = "test-esl-secret"
SHORT_TONE = "tone_stream://%(300,0,440)"



def switch_for(settings, fs_dir, esl_port, our_codecs=True, xml_cdr=True):
    """The simulator on `esl_port` running the configuration we render from `settings` into
    `fs_dir`: our dialplan and modules, our profiles' and directory's codecs (our_codecs=False: a
    switch that kept its vanilla ones), mod_xml_cdr writing into switch.cdr_dir (xml_cdr=True)."""
    render(settings, fs_dir)
    switch = Switch(dialplan_dirs=[fs_dir / "dialplan"], password=PASSWORD, conf_dir=fs_dir)
    if our_codecs:
        switch.load_codec_config(fs_dir)
    if xml_cdr:
        switch.xml_cdr_dir = str(settings.switch.cdr_dir)
    switch.start("127.0.0.1", esl_port)
    return switch

class Rig:
    """`Rig(tmp_path, handler)`: a started simulator and engine; `rig.call(...)` places a trunk call."""

    def __init__(self, tmp_path, handler=None, grace=5.0, database=None, flows_dir=None, clock=None,
                 paths_prompt_cache=None, files=None, env=None, tickets=False, our_codecs=True, **sections):
        self.tmp = tmp_path
        esl_port, out_port = free_port(), free_port()
        db = {"spool_drain_interval": 0.1, "busy_timeout": 0.05, "retries": 1, **(database or {})}
        sections.setdefault("control", {"listen_port": free_port()})
        # a carrier address, so the rendered configuration has the trunk gateway (without one the
        # switch refuses sofia/gateway/... with INVALID_GATEWAY, as the simulator does)
        sections.setdefault("trunk", {"proxy": "127.0.0.1:5099"})
        self.settings = default_settings(
            base_dir=tmp_path, env={"HOTLINE_ESL_PASSWORD": PASSWORD, **(env or {})},
            esl={"port": esl_port, "reconnect_max_delay": 0.5},
            outbound={"listen_port": out_port},
            paths={"var_dir": str(tmp_path / "var"),
                   **({"prompt_cache": str(paths_prompt_cache)} if paths_prompt_cache else {})},
            files={"flows_dir": str(flows_dir or tmp_path / "no-flows"), **(files or {})},
            shutdown={"grace_seconds": grace},
            database=db, **sections)
        # The simulator runs the dialplan we ship, rendered from these very settings, and
        # negotiates codecs with our profiles and directory (our_codecs=False: a switch that kept
        # its vanilla profiles and directory and merged only our dialplan).
        self.switch = switch_for(self.settings, tmp_path / "fs", esl_port, our_codecs=our_codecs,
                                 xml_cdr=False)
        self.engine = Engine(self.settings, call_handler=handler, clock=clock, tickets=tickets)
        self.engine.start(wait_for_switch=True)

    def call(self, number="13800138000", name="Caller", did="12345"):
        return self.switch.place_call(did, number, name)

    def cdrs(self):
        return self.engine.store.list()

    def stop(self):
        if self.engine.accepting:
            self.engine.shutdown(grace=0)
        self.switch.stop()


class EngineProcess:
    """`hotline run` as a real process against a simulator in this process (signals, kill -9)."""

    def __init__(self, tmp_path, grace=0.2, files="", extra=""):
        """`files`: more `files:` settings (flow style, e.g. 'agents: a.yaml, '); `extra`: more
        top-level settings lines (e.g. a `redis:` section)."""
        import os
        import subprocess
        import sys

        import gevent

        from engine.settings import load_settings
        esl_port, out_port = free_port(), free_port()
        self.config = tmp_path / "hotline.yaml"
        self.config.write_text(
            f'trunk: {{dids: ["12345"]}}\nesl: {{port: {esl_port}}}\noutbound: {{listen_port: {out_port}}}\n'
            f"paths: {{var_dir: {tmp_path / 'var'}}}\nfiles: {{{files}flows_dir: {tmp_path / 'no-flows'}}}\n"
            f"shutdown: {{grace_seconds: {grace}}}\nlog: {{file: {tmp_path / 'engine.log'}}}\n{extra}")
        env = {**os.environ, "HOTLINE_ESL_PASSWORD": PASSWORD}
        self.settings = load_settings(self.config, env=env)
        self.log = tmp_path / "engine.log"
        self.pid_file = self.settings.paths.var_dir / "hotline.pid"
        self.switch = switch_for(self.settings, tmp_path / "fs", esl_port)
        self._env = env
        self.start()

    def start(self):
        """(Re)start `hotline run` on the same configuration; returns once it wrote its pid file."""
        import os
        import subprocess
        import sys

        import gevent
        if self.pid_file.exists():
            os.unlink(self.pid_file)            # a killed process leaves its own behind
        self.proc = subprocess.Popen([sys.executable, "-m", "engine", "run", "--config", str(self.config)],
                                     env=self._env)
        with gevent.Timeout(20, AssertionError("the engine process did not start")):
            while not self.pid_file.exists():
                assert self.proc.poll() is None, "the engine process exited at start"
                gevent.sleep(0.05)
        return self

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.switch.stop()
