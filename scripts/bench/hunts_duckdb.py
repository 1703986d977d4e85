#!/usr/bin/env python3
"""The hunts of `crosswind hunt` asked of DuckDB, for scripts/bench/hunts-vs-duckdb.

    hunts_duckdb.py load  --db PATH --signins FILE --cloudtrail FILE
    hunts_duckdb.py query --db PATH --hunt NAME --out FILE

`load` reads Graph beta sign-ins and CloudTrail records (NDJSON) into two tables, with the
columns a hunter would pick and explicit types (so read_json does not sample). `query` runs one
hunt as SQL and writes its rows as JSON lines, as `crosswind hunt NAME --format json` does.
Each prints `RESULT {json}` with its seconds, measured from opening the database to closing it
(Python start-up and `import duckdb` left out), and the row count.

The SQL follows DETECTIONS.md and the crosswind hunt of the same name:
- risky-signins, console-no-mfa, cross-cloud-ips: the same rule, so the same rows.
- spray-sources, recon-bursts: crosswind reads the signals its correlator concluded at import;
  here the detection runs on the table at query time (sliding windows with window functions).
  The windows are the detectors' (10 distinct users failing from one IP within 10 min; 4
  distinct recon calls from one key, IP and user agent within 2 min) but not every refinement
  (rotated /24 sources, follow-up successes, whole-burst grouping), so row counts differ; the
  bench prints both.
"""
import argparse
import json
import sys
import time

import duckdb

SIGNIN_COLUMNS = {
    "id": "VARCHAR",
    "createdDateTime": "TIMESTAMP",
    "userPrincipalName": "VARCHAR",
    "userId": "VARCHAR",
    "ipAddress": "VARCHAR",
    "appDisplayName": "VARCHAR",
    "status": "STRUCT(errorCode BIGINT)",
    "location": "STRUCT(city VARCHAR, countryOrRegion VARCHAR)",
    "riskLevelDuringSignIn": "VARCHAR",
    "riskState": "VARCHAR",
    "riskEventTypes_v2": "VARCHAR[]",
    "authenticationRequirement": "VARCHAR",
    "homeTenantId": "VARCHAR",
    "resourceTenantId": "VARCHAR",
}

TRAIL_COLUMNS = {
    "eventID": "VARCHAR",
    "eventTime": "TIMESTAMP",
    "eventName": "VARCHAR",
    "eventSource": "VARCHAR",
    "sourceIPAddress": "VARCHAR",
    "userAgent": "VARCHAR",
    "errorCode": "VARCHAR",
    "recipientAccountId": "VARCHAR",
    "sessionCredentialFromConsole": "VARCHAR",
    "userIdentity": "STRUCT(type VARCHAR, principalId VARCHAR, arn VARCHAR, accountId VARCHAR,"
    " accessKeyId VARCHAR, userName VARCHAR,"
    " sessionContext STRUCT(sessionIssuer STRUCT(userName VARCHAR, arn VARCHAR)))",
    "responseElements": "JSON",
    "additionalEventData": "JSON",
}

LOAD_SQL = """
CREATE TABLE signins AS
SELECT id, createdDateTime AS time, userPrincipalName AS "user", ipAddress AS ip,
       appDisplayName AS app, status.errorCode AS status_code,
       location.countryOrRegion AS country, location.city AS city,
       riskLevelDuringSignIn AS risk_level, riskState AS risk_state,
       riskEventTypes_v2 AS risk_events, authenticationRequirement AS auth_requirement,
       homeTenantId AS home_tenant_id, resourceTenantId AS resource_tenant_id
FROM read_json(?, format = 'newline_delimited', columns = ?);
CREATE TABLE trail AS
SELECT eventID AS id, eventTime AS time, eventName AS event_name, eventSource AS event_source,
       sourceIPAddress AS source, userAgent AS user_agent, errorCode AS error_code,
       coalesce(recipientAccountId, userIdentity.accountId) AS account,
       sessionCredentialFromConsole AS from_console,
       userIdentity.type AS user_type, userIdentity.arn AS arn,
       userIdentity.accessKeyId AS access_key, userIdentity.principalId AS principal,
       -- the user's name as crosswind's normaliser gives it
       coalesce(userIdentity.userName,
                CASE WHEN userIdentity.type = 'Root' THEN 'root' END,
                nullif(regexp_extract(userIdentity.arn, ':assumed-role/[^/]+/(.+)$', 1), ''),
                nullif(regexp_extract(userIdentity.arn, ':federated-user/(.+)$', 1), '')) AS "user",
       userIdentity.sessionContext.sessionIssuer.userName AS issuer_name,
       userIdentity.sessionContext.sessionIssuer.arn AS issuer_arn,
       responseElements->>'ConsoleLogin' AS console_result,
       additionalEventData->>'MFAUsed' AS mfa_used,
       additionalEventData->>'SamlProviderArn' AS saml_provider_arn
FROM read_json(?, format = 'newline_delimited', columns = ?);
"""

RISKY_EVENTS = ("impossibletravel", "anonymizedipaddress", "maliciousipaddress",
                "unfamiliarfeatures", "passwordspray", "leakedcredentials", "nationstateip",
                "riskyipaddress", "investigationsthreatintelligence")

HUNTS = {
    "risky-signins": f"""
WITH s AS (
  SELECT *,
    (lower(risk_level) IN ('high', 'medium')
       OR lower(risk_state) IN ('atrisk', 'confirmedcompromised'))::INT AS by_risk,
    coalesce(regexp_matches(lower(array_to_string(risk_events, ',')),
       '{"|".join(RISKY_EVENTS)}'), false)::INT AS by_event,
    (auth_requirement = 'singleFactorAuthentication'
       AND home_tenant_id IS DISTINCT FROM resource_tenant_id)::INT AS by_sfa
  FROM signins WHERE status_code = 0)
SELECT strftime(time, '%Y-%m-%dT%H:%M:%S.%gZ') AS time, "user", ip AS src_ip, app, country, city,
       risk_level, risk_state, risk_events, by_risk + by_event + by_sfa AS threat_score
FROM s WHERE by_risk + by_event + by_sfa > 0
ORDER BY threat_score DESC, s.time DESC""",
    "console-no-mfa": """
SELECT strftime(time, '%Y-%m-%dT%H:%M:%S.%gZ') AS time, "user", user_type AS type, arn, account,
       source AS src_ip, mfa_used, user_agent
FROM trail
WHERE event_name = 'ConsoleLogin' AND console_result = 'Success' AND error_code IS NULL
  AND user_type IN ('IAMUser', 'Root')
  AND NOT (coalesce(issuer_name LIKE 'AWSReservedSSO\\_%' ESCAPE '\\', false)
           OR coalesce(issuer_arn LIKE '%/aws-reserved/sso.amazonaws.com/%', false)
           OR saml_provider_arn IS NOT NULL)
  AND coalesce(lower(trim(mfa_used)), '') <> 'yes'
ORDER BY trail.time DESC""",
    "cross-cloud-ips": """
WITH ev AS (
  SELECT ip, 'Azure' AS cloud, "user", time FROM signins WHERE ip IS NOT NULL AND ip <> ''
  UNION ALL
  SELECT source, 'AWS', "user", time FROM trail
  WHERE regexp_matches(source, '^[0-9.]+$|^[0-9a-fA-F:]*:[0-9a-fA-F:.]*$'))
SELECT ip AS src_ip,
       count(*) FILTER (cloud = 'Azure') AS azure_events,
       count(*) FILTER (cloud = 'AWS') AS aws_events,
       string_agg(DISTINCT "user", ';' ORDER BY "user") FILTER (cloud = 'Azure') AS azure_users,
       string_agg(DISTINCT "user", ';' ORDER BY "user") FILTER (cloud = 'AWS') AS aws_users,
       strftime(min(time), '%Y-%m-%dT%H:%M:%S.%gZ') AS first_seen,
       strftime(max(time), '%Y-%m-%dT%H:%M:%S.%gZ') AS last_seen
FROM ev GROUP BY ip
HAVING count(*) FILTER (cloud = 'Azure') > 0 AND count(*) FILTER (cloud = 'AWS') > 0
ORDER BY azure_events + aws_events DESC, ip""",
    # One row per source and window end where 10+ distinct users failed within 10 minutes.
    "spray-sources": """
WITH f AS (
  SELECT ip, time, "user" FROM signins
  WHERE status_code IN (50126, 50053, 50055, 50057) AND ip IS NOT NULL),
w AS (
  SELECT ip, time, count(DISTINCT lower("user")) OVER (
           PARTITION BY ip ORDER BY time
           RANGE BETWEEN INTERVAL 10 MINUTE PRECEDING AND CURRENT ROW) AS users
  FROM f)
SELECT ip AS source, strftime(min(time), '%Y-%m-%dT%H:%M:%S.%gZ') AS first_alert,
       max(users) AS users
FROM w WHERE users >= 10 GROUP BY ip ORDER BY first_alert""",
    # One row per (key, IP, user agent) whose recon calls reach 4 distinct within 2 minutes.
    "recon-bursts": """
WITH r AS (
  SELECT coalesce(nullif(access_key, ''), principal) AS key, source, user_agent, time,
         regexp_replace(event_name, '[0-9_]+$', '') AS call
  FROM trail
  WHERE regexp_replace(event_name, '[0-9_]+$', '') IN (  -- RECON_CALLS in crosswind-correlate
      'GetCallerIdentity', 'ListAttachedUserPolicies', 'ListGroupsForUser', 'ListUserPolicies',
      'ListBuckets', 'DescribeInstances', 'ListUsers', 'ListRoles',
      'GetAccountAuthorizationDetails', 'GetAccountSummary', 'ListAccessKeys', 'ListGroups',
      'ListPolicies', 'GetUser', 'ListAttachedGroupPolicies', 'ListGroupPolicies', 'GetPolicy',
      'GetPolicyVersion', 'ListRolePolicies', 'ListAttachedRolePolicies',
      'ListInstanceProfiles', 'ListMFADevices', 'GetLoginProfile', 'DescribeRegions',
      'ListSecrets', 'GetBucketPolicy', 'GetBucketAcl', 'ListAccountAliases',
      'GetAccountPasswordPolicy', 'ListSAMLProviders', 'ListOpenIDConnectProviders',
      'DescribeSecurityGroups', 'DescribeVpcs', 'ListFunctions', 'DescribeDBInstances',
      'ListDetectors', 'DescribeTrails', 'GetSendQuota', 'ListIdentities',
      'ListOrganizationalUnitsForParent', 'ListAccounts', 'DescribeOrganization')
    AND coalesce(from_console, '') <> 'true'
    AND NOT coalesce(user_agent ILIKE 'AWS Internal%' OR user_agent ILIKE '%console%', false)),
w AS (
  SELECT key, source, user_agent, time, count(DISTINCT call) OVER (
           PARTITION BY key, source, user_agent ORDER BY time
           RANGE BETWEEN INTERVAL 2 MINUTE PRECEDING AND CURRENT ROW) AS calls
  FROM r)
SELECT key AS identity, source AS src_ip, strftime(min(time), '%Y-%m-%dT%H:%M:%S.%gZ') AS time,
       max(calls) AS calls
FROM w WHERE calls >= 4 GROUP BY key, source, user_agent ORDER BY time""",
}


def result(**fields):
    print("RESULT " + json.dumps(fields), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("phase", choices=["load", "query"])
    p.add_argument("--db", required=True)
    p.add_argument("--signins")
    p.add_argument("--cloudtrail")
    p.add_argument("--hunt", choices=sorted(HUNTS))
    p.add_argument("--out", default="/dev/null")
    p.add_argument("--threads", type=int)
    a = p.parse_args()
    started = time.perf_counter()
    con = duckdb.connect(a.db)
    if a.threads:
        con.execute(f"SET threads = {a.threads}")
    if a.phase == "load":
        if not (a.signins and a.cloudtrail):
            p.error("load needs --signins and --cloudtrail")
        for statement in filter(str.strip, LOAD_SQL.split(";")):
            params = ([a.signins, SIGNIN_COLUMNS] if "signins" in statement.split("AS")[0]
                      else [a.cloudtrail, TRAIL_COLUMNS])
            con.execute(statement, params)
        rows = con.execute("SELECT (SELECT count(*) FROM signins) + (SELECT count(*) FROM trail)").fetchone()[0]
        con.execute("CHECKPOINT")
    else:
        if not a.hunt:
            p.error("query needs --hunt")
        cur = con.execute(HUNTS[a.hunt])
        names = [d[0] for d in cur.description]
        rows = 0
        with open(a.out, "w") as out:
            while batch := cur.fetchmany(10_000):
                for row in batch:
                    out.write(json.dumps(dict(zip(names, row)), default=str) + "\n")
                rows += len(batch)
    con.close()
    result(phase=a.phase, hunt=a.hunt, seconds=round(time.perf_counter() - started, 4), rows=rows)


if __name__ == "__main__":
    sys.exit(main())
