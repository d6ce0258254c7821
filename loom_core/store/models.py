"""peewee models bound per database.

There is never a global ``Database``: ``bind(db)`` builds a fresh set of model classes whose
``Meta.database`` is that one store, so one process can hold many projects' stores open.
The CHECK constraints live in the raw-SQL migrations; these models are the typed read side.
"""

from __future__ import annotations

from types import SimpleNamespace

import peewee as pw


class _Base(pw.Model):
    class Meta:
        legacy_table_names = False


class PipelineState(_Base):
    id = pw.IntegerField(primary_key=True)
    schema_version = pw.IntegerField()
    project_dir = pw.TextField()
    bundle = pw.TextField()
    task_id = pw.TextField()
    task = pw.TextField()
    task_short = pw.TextField(null=True)
    driver_state_id = pw.TextField()
    status = pw.TextField()
    verdict = pw.TextField(null=True)
    work_result = pw.TextField(null=True)
    started_at = pw.TextField()
    ended_at = pw.TextField(null=True)
    gate_policies = pw.TextField()
    decisions = pw.TextField()
    bundle_state = pw.TextField()
    files_created = pw.TextField()
    files_modified = pw.TextField()
    pipeline_violation = pw.TextField(null=True)

    class Meta:
        table_name = "pipeline_state"


class PipelineCounters(_Base):
    id = pw.IntegerField(primary_key=True)
    agents_count = pw.IntegerField()
    total_tokens_in = pw.IntegerField()
    total_tokens_out = pw.IntegerField()
    total_tokens_cached = pw.IntegerField()

    class Meta:
        table_name = "pipeline_counters"


class GateCounter(_Base):
    role = pw.TextField(primary_key=True)
    human_revisions = pw.IntegerField()
    auto_rejections = pw.IntegerField()

    class Meta:
        table_name = "pipeline_gate_counters"


class DriverState(_Base):
    id = pw.IntegerField(primary_key=True)
    flow_name = pw.TextField()
    step_index = pw.IntegerField()
    pending_user_answer = pw.TextField(null=True)
    scratch = pw.TextField()
    tick_seq = pw.IntegerField()
    state_hash = pw.TextField()
    audit_head = pw.TextField()
    audit_rows = pw.IntegerField()

    class Meta:
        table_name = "driver_state"


class Phase(_Base):
    name = pw.TextField(primary_key=True)
    status = pw.TextField()
    skipped_reason = pw.TextField(null=True)
    extension = pw.TextField(null=True)
    updated_at = pw.TextField()

    class Meta:
        table_name = "phases"


class AgentRecord(_Base):
    agent_run_id = pw.TextField(primary_key=True)
    seq = pw.IntegerField()
    phase = pw.TextField()
    agent = pw.TextField()
    model = pw.TextField()
    output_kind = pw.TextField()
    tokens_in = pw.IntegerField()
    tokens_out = pw.IntegerField()
    tokens_cached = pw.IntegerField()
    recorded_at = pw.TextField()

    class Meta:
        table_name = "agent_records"


class PendingAgent(_Base):
    agent_run_id = pw.TextField(primary_key=True)
    agent = pw.TextField()
    phase = pw.TextField()
    model = pw.TextField()
    started_at = pw.TextField()

    class Meta:
        table_name = "pending_agents"


class AgentVerdict(_Base):
    id = pw.IntegerField(primary_key=True)
    phase = pw.TextField()
    agent = pw.TextField()
    iteration = pw.IntegerField()
    verdict = pw.TextField()
    summary_line = pw.TextField(null=True)
    blocking_issues = pw.IntegerField()
    warn_issues = pw.IntegerField()
    info_issues = pw.IntegerField()
    categories_seen = pw.TextField()
    recorded_at = pw.TextField()

    class Meta:
        table_name = "agent_verdicts"


class Finding(_Base):
    id = pw.TextField(primary_key=True)
    task_id = pw.TextField()
    agent = pw.TextField()
    iteration = pw.IntegerField()
    phase = pw.TextField()
    file = pw.TextField(null=True)
    line_start = pw.IntegerField(null=True)
    line_end = pw.IntegerField(null=True)
    severity = pw.TextField()
    category = pw.TextField()
    summary = pw.TextField()
    evidence_excerpt = pw.TextField(null=True)
    suggested_fix = pw.TextField(null=True)
    status = pw.TextField()
    recorded_at = pw.TextField()
    superseded_by_iteration = pw.IntegerField(null=True)
    origin = pw.TextField()

    class Meta:
        table_name = "findings"


class GateRow(_Base):
    name = pw.TextField(primary_key=True)
    status = pw.TextField()
    decided_by = pw.TextField(null=True)
    feedback = pw.TextField(null=True)
    decided_at = pw.TextField(null=True)

    class Meta:
        table_name = "gates"


class Audit(_Base):
    id = pw.IntegerField(primary_key=True)
    ts = pw.TextField()
    type = pw.TextField()
    task_id = pw.TextField(null=True)
    driver_state_id = pw.TextField(null=True)
    payload = pw.TextField()
    verdict = pw.TextField()
    error_class = pw.TextField(null=True)
    prev_hash = pw.TextField()
    hash = pw.TextField()

    class Meta:
        table_name = "audit"


class Ledger(_Base):
    key = pw.TextField(primary_key=True)
    first_seen_ts = pw.TextField()
    last_seen_ts = pw.TextField()
    response_blob = pw.TextField(null=True)
    driver_state_id = pw.TextField(null=True)
    task_id = pw.TextField(null=True)
    now_token = pw.TextField()

    class Meta:
        table_name = "kernel_idempotency_ledger"


class Transcript(_Base):
    agent_run_id = pw.TextField(primary_key=True)
    agent = pw.TextField()
    phase = pw.TextField()
    model = pw.TextField()
    prompt = pw.TextField()
    output = pw.TextField()
    files = pw.TextField()
    usage = pw.TextField()
    cost_usd = pw.FloatField(null=True)
    duration_ms = pw.IntegerField(null=True)
    recorded_at = pw.TextField()

    class Meta:
        table_name = "transcripts"


ALL = (PipelineState, PipelineCounters, GateCounter, DriverState, Phase, AgentRecord, PendingAgent,
       AgentVerdict, Finding, GateRow, Audit, Ledger, Transcript)


def bind(db: pw.Database) -> SimpleNamespace:
    """A namespace of model classes bound to ``db`` only."""
    ns = {}
    for model in ALL:
        meta = type("Meta", (), {"database": db, "table_name": model._meta.table_name})
        ns[model.__name__] = type(model.__name__, (model,), {"Meta": meta, "__module__": __name__})
    return SimpleNamespace(**ns)
