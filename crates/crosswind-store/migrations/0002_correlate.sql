-- Crosswind store: correlation results (written by crosswind-correlate's driver).
--
-- Signal and finding ids are deterministic (a hash of what they observed), so re-running the
-- correlator over a time range after a restart or a late record re-emits the same ids and
-- INSERT OR IGNORE makes that idempotent.

-- One row per canonical identity (the risk object: lower-cased UPN, IAM user ARN,
-- root@<account>, assumed-role session ARN).
CREATE TABLE identities (
    name       TEXT    PRIMARY KEY,
    first_seen INTEGER NOT NULL,   -- event time, epoch ms
    last_seen  INTEGER NOT NULL
) WITHOUT ROWID;

-- Every name under which an identity appears: UPN, Entra object id, IAM user ARN and name,
-- root ARN, SSO / SAML session ARN, assumed-role ARN.
CREATE TABLE aliases (
    identity   TEXT    NOT NULL,
    kind       TEXT    NOT NULL,   -- upn | object_id | iam_user_arn | iam_user_name | root_arn | sso_session | assumed_role_arn | federated_user_arn | principal_arn
    value      TEXT    NOT NULL,   -- as the source recorded it
    cloud      TEXT    NOT NULL,   -- 'Azure' | 'AWS'
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    PRIMARY KEY (identity, kind, value)
) WITHOUT ROWID;
CREATE INDEX aliases_value ON aliases (value COLLATE NOCASE);

-- Risk events. risk_object is '' for threat-only signals (a spray source).
CREATE TABLE signals (
    id            TEXT    PRIMARY KEY,
    signal        TEXT    NOT NULL,
    time          INTEGER NOT NULL,   -- event time of the event that completed it, epoch ms
    risk_object   TEXT    NOT NULL,
    risk_score    REAL    NOT NULL,
    threat_object TEXT,
    created_at    INTEGER NOT NULL,   -- wall clock, epoch ms
    body          TEXT    NOT NULL    -- the Signal as JSON
) WITHOUT ROWID;
CREATE INDEX signals_time ON signals (time);
CREATE INDEX signals_risk_object_time ON signals (risk_object, time);
CREATE INDEX signals_threat_object_time ON signals (threat_object, time);

-- Which events (by metadata.uid = events.record_id) each signal rests on.
CREATE TABLE signal_events (
    signal_id TEXT NOT NULL REFERENCES signals (id) ON DELETE CASCADE,
    record_id TEXT NOT NULL,
    PRIMARY KEY (signal_id, record_id)
) WITHOUT ROWID;
CREATE INDEX signal_events_record ON signal_events (record_id);

-- Identities whose decayed risk crossed the threshold.
CREATE TABLE findings (
    id         TEXT    PRIMARY KEY,
    identity   TEXT    NOT NULL,
    raised_at  INTEGER NOT NULL,   -- event time of the signal that crossed the threshold
    score      REAL    NOT NULL,
    created_at INTEGER NOT NULL,   -- wall clock, epoch ms
    body       TEXT    NOT NULL    -- the Finding as JSON
) WITHOUT ROWID;
CREATE INDEX findings_identity_raised ON findings (identity, raised_at);
CREATE INDEX findings_raised ON findings (raised_at);
