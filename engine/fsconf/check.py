"""What the engine relies on in the switch's configuration, checked at every connect.

An operator who merges only part of our configuration into an existing FreeSWITCH gets a switch
that answers trunk calls but, say, has no `hotline_conference` context: a consult would transfer
the agent's leg into nothing and the switch would hang it up (FREESWITCH.md). So at connect the
engine asks the switch (`xml_locate`, `module_exists`, answered as mod_commands.c does), logs each
missing piece at ERROR with what needs it and what to merge, keeps the result, and the operations
that need a missing piece fail with that message instead of hanging up a leg.
"""
import logging
from typing import NamedTuple

from engine.esl import commands

log = logging.getLogger("hotline.switch")


class Need(NamedTuple):
    kind: str          # "context" or "module"
    name: str
    feature: str       # the engine feature that needs it (InCall asks by feature)
    why: str
    fix: str


NEEDS = (
    Need("context", "public", "calls", "trunk calls reach the engine's socket",
         "merge dialplan/public.xml (hotline fs-config render)"),
    Need("context", "hotline_conference", "conference", "consult and three-way calls",
         "merge dialplan/conference.xml"),
    Need("context", "hotline_handover", "handover", "blind transfer of a preview call's customer",
         "merge dialplan/handover.xml"),
    Need("context", "agents", "phones", "agents' and supervisors' phones dialling (*0, 88<uuid>)",
         "merge dialplan/agents.xml; the internal profile's context is agents"),
    Need("module", "mod_conference", "conference", "consult and three-way calls",
         "load it in autoload_configs/modules.conf.xml, with conference.conf.xml"),
    Need("module", "mod_dptools", "calls", "answer, playback, bridge, record", "load it in modules.conf.xml"),
    Need("module", "mod_sndfile", "calls", "WAV prompts, recordings, voicemail", "load it in modules.conf.xml"),
    Need("module", "mod_tone_stream", "calls", "tones and silence (also the fallback for missing music)",
         "load it in modules.conf.xml"),
    Need("module", "mod_local_stream", "music", "queue music local_stream://moh",
         "load it in modules.conf.xml, with local_stream.conf.xml"),
    Need("module", "mod_native_file", "bot", "the voice bot's media tap (.r16 files)",
         "load it in modules.conf.xml"),
    Need("module", "mod_xml_cdr", "cdr", "CDRs of calls that outlive the engine",
         "load it in modules.conf.xml, with xml_cdr.conf.xml"),
    Need("module", "mod_spy", "phones", "supervisors' *0<ext> (userspy)", "load it in modules.conf.xml"),
)


class SwitchCheck:
    def __init__(self, esl, needs=NEEDS):
        self.esl = esl
        self.needs = needs
        self.missing = None            # [Need] after a check; None before the first one

    def run(self):
        """Ask the switch for every need; log what is missing. Returns the missing [Need]."""
        missing = [n for n in self.needs if not self._has(n)]
        self.missing = missing
        for n in missing:
            log.error("the switch has no %s %s: %s will fail; %s", n.kind, n.name, n.why, n.fix)
        if not missing:
            log.info("the switch has every context and module the engine uses")
        return missing

    def problems(self, feature):
        """Messages for what `feature` lacks, asked again (an operator may have fixed it and run
        reloadxml since); [] when nothing is missing or the switch was never checked."""
        if not self.missing:
            return []
        wanted = [n for n in self.missing if n.feature == feature]
        still = [n for n in wanted if not self._has(n)]
        if len(still) != len(wanted):
            self.missing = [n for n in self.missing if n not in wanted or n in still]
        return [f"the switch has no {n.kind} {n.name} ({n.why}): {n.fix}" for n in still]

    def _has(self, need):
        if need.kind == "context":
            reply = self.esl.api(commands.xml_locate_context(need.name), check=False)
            return reply.lstrip().startswith("<context")
        return self.esl.api(commands.module_exists(need.name), check=False).strip() == "true"
