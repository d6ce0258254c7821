-- loom task store, schema 1. Timestamps are caller-supplied NowTokens; SQL never reads the clock.
CREATE TABLE pipeline_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  schema_version INTEGER NOT NULL,
  project_dir TEXT NOT NULL,
  bundle TEXT NOT NULL,
  task_id TEXT NOT NULL,
  task TEXT NOT NULL,
  task_short TEXT,
  driver_state_id TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('in_progress', 'completed', 'abandoned')),
  verdict TEXT CHECK (verdict IS NULL OR verdict IN ('accepted', 'rejected', 'failed_force_closed')),
  work_result TEXT CHECK (work_result IS NULL OR work_result IN ('clean', 'blocked', 'unknown')),
  started_at TEXT NOT NULL,
  ended_at TEXT,
  gate_policies TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(gate_policies)),
  decisions TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(decisions)),
  bundle_state TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(bundle_state)),
  files_created TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(files_created)),
  files_modified TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(files_modified)),
  pipeline_violation TEXT
);

CREATE TABLE pipeline_counters (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  agents_count INTEGER NOT NULL DEFAULT 0,
  total_tokens_in INTEGER NOT NULL DEFAULT 0,
  total_tokens_out INTEGER NOT NULL DEFAULT 0,
  total_tokens_cached INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE pipeline_gate_counters (
  role TEXT PRIMARY KEY,
  human_revisions INTEGER NOT NULL DEFAULT 0,
  auto_rejections INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- driver position plus the store's own bookkeeping: tick sequence, chained state hash and
-- the head of the tamper-evident audit chain (updated in the same statement every tick).
CREATE TABLE driver_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  flow_name TEXT NOT NULL,
  step_index INTEGER NOT NULL,
  pending_user_answer TEXT CHECK (pending_user_answer IS NULL OR json_valid(pending_user_answer)),
  scratch TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(scratch)),
  tick_seq INTEGER NOT NULL DEFAULT 0,
  state_hash TEXT NOT NULL DEFAULT '',
  audit_head TEXT NOT NULL DEFAULT '',
  audit_rows INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE phases (
  name TEXT PRIMARY KEY,
  status TEXT NOT NULL CHECK (status IN ('pending', 'in_progress', 'completed', 'skipped')),
  skipped_reason TEXT,
  extension TEXT CHECK (extension IS NULL OR json_valid(extension)),
  updated_at TEXT NOT NULL
) WITHOUT ROWID;

-- keyed by run id (one b-tree, and a second delivery of a run is impossible); seq keeps order
CREATE TABLE agent_records (
  agent_run_id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  phase TEXT NOT NULL REFERENCES phases(name),
  agent TEXT NOT NULL,
  model TEXT NOT NULL,
  output_kind TEXT NOT NULL,
  tokens_in INTEGER NOT NULL DEFAULT 0,
  tokens_out INTEGER NOT NULL DEFAULT 0,
  tokens_cached INTEGER NOT NULL DEFAULT 0,
  recorded_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE pending_agents (
  agent_run_id TEXT PRIMARY KEY,
  agent TEXT NOT NULL,
  phase TEXT NOT NULL,
  model TEXT NOT NULL,
  started_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE agent_verdicts (
  id INTEGER PRIMARY KEY,
  phase TEXT NOT NULL,
  agent TEXT NOT NULL,
  iteration INTEGER NOT NULL,
  verdict TEXT NOT NULL,
  summary_line TEXT,
  blocking_issues INTEGER NOT NULL DEFAULT 0,
  warn_issues INTEGER NOT NULL DEFAULT 0,
  info_issues INTEGER NOT NULL DEFAULT 0,
  categories_seen TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(categories_seen)),
  recorded_at TEXT NOT NULL
);

CREATE TABLE findings (
  id TEXT PRIMARY KEY,
  task_id TEXT NOT NULL,
  agent TEXT NOT NULL,
  iteration INTEGER NOT NULL,
  phase TEXT NOT NULL,
  file TEXT,
  line_start INTEGER,
  line_end INTEGER,
  severity TEXT NOT NULL CHECK (severity IN ('blocking', 'warn', 'info')),
  category TEXT NOT NULL,
  summary TEXT NOT NULL,
  evidence_excerpt TEXT,
  suggested_fix TEXT,
  status TEXT NOT NULL CHECK (status IN ('open', 'fixed', 'accepted_by_human', 'dismissed')),
  recorded_at TEXT NOT NULL,
  superseded_by_iteration INTEGER,
  origin TEXT NOT NULL DEFAULT 'code' CHECK (origin IN ('code', 'harness'))
) WITHOUT ROWID;

CREATE TABLE gates (
  name TEXT PRIMARY KEY,
  status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'auto-approved', 'auto-rejected', 'skipped')),
  decided_by TEXT,
  feedback TEXT,
  decided_at TEXT
) WITHOUT ROWID;

-- audit doubles as the durable tick log (type 'tick'); each row chains SHA-256(prev || content).
-- Tables are kept to one b-tree each (WITHOUT ROWID, no extra indexes, no AUTOINCREMENT): a
-- tick's commit writes as few pages as possible. Small per-task tables need no secondary index.
CREATE TABLE audit (
  id INTEGER PRIMARY KEY,
  ts TEXT NOT NULL,
  type TEXT NOT NULL,
  task_id TEXT,
  driver_state_id TEXT,
  payload TEXT NOT NULL CHECK (json_valid(payload)),
  verdict TEXT NOT NULL DEFAULT 'ok' CHECK (verdict IN ('ok', 'error', 'force_bypass')),
  error_class TEXT,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);

CREATE TABLE kernel_idempotency_ledger (
  key TEXT PRIMARY KEY,
  first_seen_ts TEXT NOT NULL,
  last_seen_ts TEXT NOT NULL,
  response_blob TEXT CHECK (response_blob IS NULL OR json_valid(response_blob)),
  driver_state_id TEXT,
  task_id TEXT,
  now_token TEXT NOT NULL
) WITHOUT ROWID;

-- driver-owned: one row per finished spawn (prompt, output, usage); archived with the task.
CREATE TABLE transcripts (
  agent_run_id TEXT PRIMARY KEY,
  agent TEXT NOT NULL,
  phase TEXT NOT NULL,
  model TEXT NOT NULL,
  prompt TEXT NOT NULL,
  output TEXT NOT NULL,
  files TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(files)),
  usage TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(usage)),
  cost_usd REAL,
  duration_ms INTEGER,
  recorded_at TEXT NOT NULL
);
