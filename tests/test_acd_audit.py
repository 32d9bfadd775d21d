"""The audit log keeps writing to its own database whatever else in the process opens one."""
import datetime

from engine.acd.agentreport import agent_figures
from engine.acd.audit import AuditLog


def test_an_agents_report_on_another_database_does_not_take_the_engines_audit_writes(tmp_path):
    engine_db = f"sqlite:///{tmp_path / 'engine.db'}"
    other_db = f"sqlite:///{tmp_path / 'other.db'}"
    audit = AuditLog(engine_db).open()
    try:
        audit.record("state", actor="1001", agent="1001", from_state="available", to_state="break")
        assert audit.flush(10)
        # a report over another database (e.g. `hotline agents report --db`, in the same process)
        other = AuditLog(other_db).open()
        other.close()
        assert agent_figures(other_db, datetime.date.today()) == {}
        audit.record("state", actor="1001", agent="1001", from_state="break", to_state="available")
        assert audit.flush(10)
        assert [e["to_state"] for e in audit.events(agent="1001")] == ["available", "break"]
        report = AuditLog(other_db).open()
        try:
            assert report.events() == []                      # nothing went to the report's file
        finally:
            report.close()
    finally:
        audit.close()
