"""National scale, the data: a synthetic national data set built server-side in the real tables.

``INSERT ... SELECT generate_series`` with every random draw a hash of the row
number (``pg_temp.u``), so the data is the same each run and none of it goes
over the wire: agencies, people and referrals with their dated timelines,
returned referrals, police-recorded incidents, and a programme with groups,
sessions and attendance marks. Foreign-key triggers are off during the load
where the role allows it, and every key is checked afterwards with anti-joins.
Names no project module: only the tables' SQL names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any

from harness import log

GROUP_SIZE = 12
CORE_SESSIONS = 24
AGENCIES = 40
RETURNED_SHARE = 0.15

# u(i, salt): a deterministic uniform number in [0, 1) from a 64-bit hash, so the
# data is the same every run without shipping any of it over the wire.
UNIFORM_FUNCTION = """
CREATE OR REPLACE FUNCTION pg_temp.u(i bigint, salt bigint) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT (hashint8extended(i, salt) & 4503599627370495)::double precision
          / 4503599627370496.0 $$
"""

_FIRST_NAMES_TEXT = (
    "James John Robert Michael David William Richard Joseph Thomas Daniel Paul Mark Steven "
    "Andrew Kevin Brian George Edward Ryan Jacob Gary Nicholas Eric Jonathan Stephen Scott "
    "Justin Brandon Gregory Samuel Benjamin Patrick Jack Dennis Jerry Tyler Aaron Adam Lee Sarah"
)
FIRST_NAMES = tuple(_FIRST_NAMES_TEXT.split())
_LAST_NAMES_TEXT = (
    "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson "
    "Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel Jackson "
    "Wood Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan "
    "Allen James Scott Phillips Watson Davis Parker Price Bennett Young Griffiths Mitchell "
    "Kelly Cook Carter Richardson Bailey Collins Bell Shaw Murphy"
)
LAST_NAMES = tuple(_LAST_NAMES_TEXT.split())
AGENCY_KINDS = (
    "Police",
    "Children's Social Care",
    "Probation Service",
    "Early Help",
    "Adult Social Care",
    "Housing Options",
    "GP Practice Network",
    "Self-referral Line",
)
RETURN_REASONS = (
    "consent_missing",
    "incomplete",
    "no_contact_number",
    "under_16",
    "not_domestic_abuse",
    "on_mandated_programme",
    "out_of_area",
)


def _sql_text_array(values: tuple[str, ...] | list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def synthetic_referrals_sql(n: int, first_day: date, days: int, cutoff: date) -> str:
    """One row per referral and person: received date, person, covariates, milestones.

    Milestones after ``cutoff`` have not happened yet (and nor has anything after them).
    Reoffending hazard rises with risk level, prior incidents, substance misuse and youth.
    """
    first = f"DATE '{first_day.isoformat()}'"
    cut = f"DATE '{cutoff.isoformat()}'"
    first_names = _sql_text_array(FIRST_NAMES)
    last_names = _sql_text_array(LAST_NAMES)
    return f"""
CREATE TEMP TABLE syn AS
WITH a AS (
    SELECT i,
           {first} + floor({days}::float8 * ((i - 1) + pg_temp.u(i, 1)) / {n})::int
               AS received_on,
           pg_temp.u(i, 2) AS u_contact, pg_temp.u(i, 3) AS u_engage,
           pg_temp.u(i, 4) AS u_start, pg_temp.u(i, 5) AS u_exit,
           pg_temp.u(i, 6) AS d1, pg_temp.u(i, 7) AS d2, pg_temp.u(i, 8) AS d3,
           pg_temp.u(i, 9) AS d4, pg_temp.u(i, 10) AS d5,
           pg_temp.u(i, 11) AS u_gender, pg_temp.u(i, 12) AS u_risk,
           pg_temp.u(i, 13) AS u_prior, pg_temp.u(i, 14) AS u_prior_n,
           pg_temp.u(i, 15) AS u_substance, pg_temp.u(i, 16) AS u_mental,
           pg_temp.u(i, 17) AS u_children, pg_temp.u(i, 18) AS u_age,
           pg_temp.u(i, 19) AS u_rel, pg_temp.u(i, 20) AS u_notes,
           pg_temp.u(i, 21) AS u_victims, pg_temp.u(i, 22) AS u_agency,
           pg_temp.u(i, 23) AS u_la, pg_temp.u(i, 24) AS u_consent,
           pg_temp.u(i, 25) AS u_off1, pg_temp.u(i, 26) AS u_off2,
           pg_temp.u(i, 27) AS u_off2_has, pg_temp.u(i, 28) AS u_prior_off,
           pg_temp.u(i, 29) AS u_prior_day, pg_temp.u(i, 30) AS u_first,
           pg_temp.u(i, 31) AS u_last
    FROM generate_series(1, {n}) AS i
), b AS (
    SELECT a.*,
           CASE WHEN u_contact < 0.80 THEN received_on + 1 + floor(d1 * 28)::int END
               AS contacted_raw
    FROM a
), c AS (
    SELECT b.*,
           CASE WHEN contacted_raw IS NOT NULL AND u_engage < 0.65
                THEN contacted_raw + 7 + floor(d2 * 40)::int END AS engaged_raw
    FROM b
), d AS (
    SELECT c.*,
           CASE WHEN engaged_raw IS NOT NULL AND u_start < 0.75
                THEN engaged_raw + 7 + floor(d3 * 50)::int END AS started_raw
    FROM c
), e AS (
    SELECT d.*,
           CASE WHEN started_raw IS NOT NULL AND u_exit < 0.55
                THEN started_raw + 175 + floor(d4 * 35)::int END AS completed_raw,
           CASE
               WHEN started_raw IS NOT NULL THEN
                   CASE WHEN u_exit >= 0.55 AND u_exit < 0.90 THEN 'disengaged' END
               WHEN engaged_raw IS NOT NULL THEN
                   CASE WHEN u_exit < 0.55 THEN 'disengaged'
                        WHEN u_exit < 0.65 THEN 'withdrawn' END
               WHEN contacted_raw IS NOT NULL THEN
                   CASE WHEN u_exit < 0.50 THEN 'disengaged'
                        WHEN u_exit < 0.60 THEN 'withdrawn'
                        WHEN u_exit < 0.70 THEN 'closed' END
               ELSE
                   CASE WHEN u_exit < 0.35 THEN 'disengaged'
                        WHEN u_exit < 0.50 THEN 'withdrawn'
                        WHEN u_exit < 0.60 THEN 'closed' END
           END AS exit_type,
           coalesce(started_raw, engaged_raw, contacted_raw, received_on)
               + 14 + floor(d5 * 140)::int AS exit_raw,
           received_on - (6570 + floor(u_age * 14600)::int) AS date_of_birth,
           CASE WHEN u_risk < 0.05 THEN NULL WHEN u_risk < 0.55 THEN 'standard'
                WHEN u_risk < 0.85 THEN 'medium' ELSE 'high' END AS risk_level,
           CASE WHEN u_prior < 0.06 THEN NULL
                ELSE least(30, floor(-ln(1 - u_prior_n) * 2.5)::int) END AS prior_incidents,
           CASE WHEN u_substance < 0.08 THEN NULL ELSE u_substance < 0.43 END
               AS substance_misuse,
           CASE WHEN u_mental < 0.08 THEN NULL ELSE u_mental < 0.38 END AS mental_health,
           CASE WHEN u_children < 0.08 THEN NULL ELSE u_children < 0.53 END
               AS children_in_household
    FROM d
), f AS (
    SELECT e.*,
           CASE WHEN contacted_raw <= {cut} THEN contacted_raw END AS contacted_on,
           CASE WHEN engaged_raw <= {cut} THEN engaged_raw END AS engaged_on,
           CASE WHEN started_raw <= {cut} THEN started_raw END AS started_on,
           CASE WHEN completed_raw <= {cut} THEN completed_raw END AS completed_on,
           CASE WHEN exit_type IS NOT NULL AND exit_raw <= {cut} THEN exit_raw END AS exit_on,
           exp(0.35 * coalesce((risk_level = 'medium')::int, 0)
               + 0.75 * coalesce((risk_level = 'high')::int, 0)
               + 0.06 * least(coalesce(prior_incidents, 0), 15)
               + 0.35 * coalesce(substance_misuse, false)::int
               - 0.025 * ((received_on - date_of_birth) / 365.25 - 35)
               - 0.4 * (completed_raw IS NOT NULL)::int) AS hazard
    FROM e
)
SELECT i, received_on, date_of_birth, risk_level, prior_incidents, substance_misuse,
       mental_health, children_in_household, exit_type, exit_on,
       contacted_on, engaged_on, started_on, completed_on,
       CASE WHEN u_gender < 0.88 THEN 'male' WHEN u_gender < 0.96 THEN 'female'
            WHEN u_gender < 0.98 THEN 'other' ELSE 'unknown' END AS gender,
       ({first_names})[1 + floor(u_first * {len(FIRST_NAMES)})::int] AS first_name,
       ({last_names})[1 + floor(u_last * {len(LAST_NAMES)})::int] AS last_name,
       1 + floor(u_agency * {AGENCIES})::int AS agency_k,
       1 + floor(u_la * 150)::int AS la_k,
       CASE WHEN u_rel < 0.55 THEN 'partner' WHEN u_rel < 0.90 THEN 'ex_partner'
            WHEN u_rel < 0.98 THEN 'family_member' ELSE 'other' END AS relationship,
       received_on - floor(u_consent * 8)::int AS consent_obtained_on,
       CASE WHEN u_consent < 0.6 THEN 'verbal' ELSE 'written' END AS consent_method,
       u_notes < 0.7 AS has_notes, u_victims < 0.8 AS has_victims,
       received_on + 1 + floor(-ln(1 - u_off1) / (0.0002 * hazard))::int AS offence1_raw,
       CASE WHEN u_off2_has < 0.5 THEN floor(-ln(1 - u_off2) / (0.0003 * hazard))::int + 1
            END AS offence2_gap,
       CASE WHEN u_prior_off < 0.10 + 0.02 * least(coalesce(prior_incidents, 0), 10)
            THEN received_on - 1 - floor(u_prior_day * 1500)::int END AS prior_offence_on
FROM f
ORDER BY i
"""


def status_sql() -> str:
    """The latest milestone reached and its date, from the syn columns."""
    return """
CASE WHEN exit_on IS NOT NULL THEN exit_type
     WHEN completed_on IS NOT NULL THEN 'completed'
     WHEN started_on IS NOT NULL THEN 'started'
     WHEN engaged_on IS NOT NULL THEN 'engaged'
     WHEN contacted_on IS NOT NULL THEN 'contacted'
     ELSE 'accepted' END
"""


def generation_steps(
    n: int, attendance: int, first_day: date, last_day: date, cutoff: date
) -> list[tuple[str, str]]:
    """(name, SQL) in order; sizes and dates are ours, formatted in (never user input)."""
    days = (last_day - first_day).days + 1
    cut = f"DATE '{cutoff.isoformat()}'"
    first = f"DATE '{first_day.isoformat()}'"
    n_returned = round(n * RETURNED_SHARE)
    kinds = _sql_text_array(AGENCY_KINDS)
    reasons = _sql_text_array(RETURN_REASONS)
    status = status_sql()
    return [
        ("u()", UNIFORM_FUNCTION),
        ("syn: referrals and people (temp)", synthetic_referrals_sql(n, first_day, days, cutoff)),
        (
            "agency",
            f"""
INSERT INTO agency (id, name)
SELECT md5('agency:' || k)::uuid,
       ({kinds})[1 + (k - 1) % {len(AGENCY_KINDS)}] || ' ' || lpad(k::text, 2, '0')
FROM generate_series(1, {AGENCIES}) AS k
""",
        ),
        (
            "person",
            """
INSERT INTO person (id, first_name, last_name, date_of_birth, phone, gender, match_key)
SELECT md5('person:' || i)::uuid, first_name, last_name, date_of_birth,
       '+4474' || lpad(i::text, 8, '0'), gender,
       lower(last_name) || '|' || lower(first_name) || '|' || date_of_birth::text
FROM syn ORDER BY i
""",
        ),
        (
            "referral",
            f"""
INSERT INTO referral (id, reference, person, agency, submitted_by, received_on, status,
                      status_on, local_authority, relationship, risk_level, prior_incidents,
                      substance_misuse, mental_health, children_in_household,
                      consent_obtained_on, consent_method, notes, quality_score,
                      missing_details, version)
SELECT md5('referral:' || i)::uuid, 'NAT-' || lpad(i::text, 8, '0'),
       md5('person:' || i)::uuid, md5('agency:' || agency_k)::uuid, NULL, received_on,
       {status},
       coalesce(exit_on, completed_on, started_on, engaged_on, contacted_on, received_on),
       'Local authority ' || lpad(la_k::text, 3, '0'), relationship, risk_level,
       prior_incidents, substance_misuse, mental_health, children_in_household,
       consent_obtained_on, consent_method,
       CASE WHEN has_notes THEN 'Synthetic referral for the national-scale benchmark.' END,
       round(100.0 * (5 - cardinality(missing)) / 5)::int, to_jsonb(missing), 1
FROM (
    SELECT syn.*, array_remove(ARRAY[
               CASE WHEN risk_level IS NULL THEN 'risk_level' END,
               CASE WHEN prior_incidents IS NULL THEN 'prior_incidents' END,
               CASE WHEN substance_misuse IS NULL OR mental_health IS NULL
                         OR children_in_household IS NULL THEN 'complex_needs' END,
               CASE WHEN NOT has_victims THEN 'victims' END,
               CASE WHEN NOT has_notes THEN 'notes' END], NULL) AS missing
    FROM syn
) s
ORDER BY i
""",
        ),
        (
            "referral_event",
            f"""
INSERT INTO referral_event (referral, type, occurred_on, source)
SELECT md5('referral:' || syn.i)::uuid, v.type, v.day, 'import'
FROM syn
CROSS JOIN LATERAL (VALUES (1, 'accepted', received_on), (2, 'contacted', contacted_on),
                           (3, 'engaged', engaged_on), (4, 'started', started_on),
                           (5, 'completed', completed_on), (6, exit_type, exit_on))
    AS v(step, type, day)
WHERE v.day IS NOT NULL AND v.day <= {cut}
ORDER BY v.day, syn.i, v.step
""",
        ),
        (
            "returned_referral",
            f"""
INSERT INTO returned_referral (id, agency, received_on, reasons, source, fingerprint)
SELECT md5('returned:' || j)::uuid,
       md5('agency:' || (1 + floor(pg_temp.u(j, 101) * {AGENCIES})::int))::uuid,
       {first} + floor({days}::float8 * ((j - 1) + pg_temp.u(j, 102)) / {n_returned})::int,
       CASE WHEN pg_temp.u(j, 103) < 0.7
            THEN jsonb_build_array(({reasons})[1 + floor(pg_temp.u(j, 104) * 7)::int])
            ELSE jsonb_build_array(({reasons})[1 + floor(pg_temp.u(j, 104) * 7)::int],
                                   ({reasons})[1 + floor(pg_temp.u(j, 105) * 7)::int]) END,
       CASE WHEN pg_temp.u(j, 106) < 0.4 THEN 'import' ELSE 'api' END,
       CASE WHEN pg_temp.u(j, 106) < 0.4 THEN md5('returned:' || j) END
FROM generate_series(1, {n_returned}) AS j
ORDER BY j
""",
        ),
        (
            "reoffence",
            f"""
INSERT INTO reoffence (id, person, offence_date, offence_type, fingerprint)
SELECT md5('reoffence:' || syn.i || ':' || v.k)::uuid, md5('person:' || syn.i)::uuid, v.day,
       CASE WHEN (syn.i + v.k) % 5 = 0 THEN 'Common assault (domestic)'
            WHEN (syn.i + v.k) % 5 = 1 THEN 'Criminal damage (domestic)'
            ELSE 'Domestic abuse incident' END,
       md5('reoffence:' || syn.i || ':' || v.k)
FROM syn
CROSS JOIN LATERAL (VALUES (0, prior_offence_on), (1, offence1_raw),
                           (2, offence1_raw + offence2_gap)) AS v(k, day)
WHERE v.day IS NOT NULL AND v.day <= {cut}
ORDER BY v.day
""",
        ),
        (
            "programme",
            """
INSERT INTO programme (id, name) VALUES (md5('programme:1')::uuid, 'National programme')
""",
        ),
        (
            "started (temp)",
            """
CREATE TEMP TABLE started AS
SELECT i, started_on, exit_on,
       (row_number() OVER (ORDER BY started_on, i) - 1)::bigint AS r
FROM syn WHERE started_on IS NOT NULL
""",
        ),
        (
            "group",
            f"""
INSERT INTO "group" (id, programme, name, starts_on, capacity)
SELECT md5('group:' || g)::uuid, md5('programme:1')::uuid,
       'Group ' || lpad(g::text, 6, '0'), min(started_on), {GROUP_SIZE}
FROM (SELECT r / {GROUP_SIZE} AS g, started_on FROM started) s
GROUP BY g ORDER BY g
""",
        ),
        (
            "group_member",
            f"""
INSERT INTO group_member (id, "group", referral, joined_on, left_on)
SELECT md5('member:' || i)::uuid, md5('group:' || (r / {GROUP_SIZE}))::uuid,
       md5('referral:' || i)::uuid, started_on, NULL
FROM started ORDER BY r
""",
        ),
        (
            "programme_session (group)",
            f"""
INSERT INTO programme_session (id, "group", number, held_on, kind)
SELECT md5('session:' || g.g || ':' || s)::uuid, md5('group:' || g.g)::uuid, s,
       g.starts_on + 7 * (s - 1), 'group'
FROM (SELECT r / {GROUP_SIZE} AS g, min(started_on) AS starts_on FROM started GROUP BY 1) g
CROSS JOIN generate_series(1, {CORE_SESSIONS}) AS s
""",
        ),
        *attendance_steps(attendance, cut),
    ]


def attendance_steps(attendance: int, cut: str) -> list[tuple[str, str]]:
    """Marks: each started referral's group sessions held by the cut-off, then one-to-ones.

    ``bench_plan`` (a temp table) holds how many one-to-ones make the total
    ``attendance``; if the group sessions alone give more, they are cut at it.
    """
    # Marks for sessions after someone left are 'absent'; otherwise mostly present.
    mark = """
CASE WHEN m.exit_on IS NOT NULL AND held_on > m.exit_on THEN 'absent'
     WHEN pg_temp.u(m.i * 64 + n, 201) < 0.78 THEN 'attended'
     WHEN pg_temp.u(m.i * 64 + n, 201) < 0.86 THEN 'late'
     WHEN pg_temp.u(m.i * 64 + n, 201) < 0.95 THEN 'absent'
     ELSE 'excused' END
"""
    return [
        (
            "plan one-to-ones (temp)",
            f"""
CREATE TEMP TABLE bench_plan AS
WITH core AS (
    SELECT count(*) AS members,
           coalesce(sum(least({CORE_SESSIONS}, greatest(0,
               floor(({cut} - g.starts_on) / 7.0)::int + 1))), 0) AS marks
    FROM started m
    JOIN (SELECT r / {GROUP_SIZE} AS g, min(started_on) AS starts_on
          FROM started GROUP BY 1) g ON g.g = m.r / {GROUP_SIZE}
)
SELECT members, marks AS core_marks,
       greatest(0, {attendance} - marks) AS extra,
       CASE WHEN members = 0 THEN 0
            ELSE ceil(greatest(0, {attendance} - marks)::numeric / members)::int END AS per_member
FROM core
""",
        ),
        (
            "programme_session (one-to-one)",
            f"""
INSERT INTO programme_session (id, "group", number, held_on, kind)
SELECT md5('one:' || m.i || ':' || j)::uuid, md5('group:' || (m.r / {GROUP_SIZE}))::uuid,
       (m.r % {GROUP_SIZE}) * p.per_member + j,
       m.started_on + floor(j * least(182, {cut} - m.started_on)::float8
                            / (p.per_member + 1))::int,
       'one_to_one'
FROM started m CROSS JOIN bench_plan p
CROSS JOIN LATERAL generate_series(1, p.per_member) AS j
WHERE (j - 1) * p.members + m.r < p.extra
-- A group holds one one-to-one a day (programme_session_one_a_day): a second member's
-- on a day already taken is not held, and gets no mark.
ON CONFLICT DO NOTHING
""",
        ),
        (
            "attendance (group sessions)",
            f"""
INSERT INTO attendance (id, session, referral, status)
SELECT gen_random_uuid(), md5('session:' || (m.r / {GROUP_SIZE}) || ':' || n)::uuid,
       md5('referral:' || m.i)::uuid, {mark}
FROM started m
JOIN (SELECT r / {GROUP_SIZE} AS g, min(started_on) AS starts_on
      FROM started GROUP BY 1) g ON g.g = m.r / {GROUP_SIZE}
CROSS JOIN LATERAL generate_series(1, {CORE_SESSIONS}) AS n
CROSS JOIN LATERAL (SELECT g.starts_on + 7 * (n - 1) AS held_on) h
WHERE h.held_on <= {cut}
LIMIT {attendance}
""",
        ),
        (
            "attendance (one-to-ones)",
            f"""
INSERT INTO attendance (id, session, referral, status)
SELECT gen_random_uuid(), md5('one:' || m.i || ':' || n)::uuid,
       md5('referral:' || m.i)::uuid, {mark}
FROM started m CROSS JOIN bench_plan p
CROSS JOIN LATERAL generate_series(1, p.per_member) AS n
CROSS JOIN LATERAL (SELECT m.started_on + floor(n * least(182, {cut} - m.started_on)::float8
                                                / (p.per_member + 1))::int AS held_on) h
WHERE (n - 1) * p.members + m.r < p.extra
  AND EXISTS (SELECT 1 FROM programme_session held
              WHERE held.id = md5('one:' || m.i || ':' || n)::uuid)
""",
        ),
    ]


GENERATED_TABLES = (
    "agency",
    "person",
    "referral",
    "referral_event",
    "returned_referral",
    "reoffence",
    "programme",
    '"group"',
    "group_member",
    "programme_session",
    "attendance",
)

# Every foreign key of the generated rows, checked after loading (child, column, parent).
FOREIGN_KEYS = (
    ("referral", "person", "person"),
    ("referral", "agency", "agency"),
    ("referral_event", "referral", "referral"),
    ("returned_referral", "agency", "agency"),
    ("reoffence", "person", "person"),
    ('"group"', "programme", "programme"),
    ("group_member", '"group"', '"group"'),
    ("group_member", "referral", "referral"),
    ("programme_session", '"group"', '"group"'),
    ("attendance", "session", "programme_session"),
    ("attendance", "referral", "referral"),
)


async def generate(
    connection: Any, n: int, attendance: int, first_day: date, last_day: date, cutoff: date
) -> dict[str, Any]:
    """Fill the real tables; returns step timings, row counts and the FK check."""
    steps: dict[str, float] = {}
    started = time.perf_counter()
    await connection.execute("SET synchronous_commit = off")
    await connection.execute("SET maintenance_work_mem = '1GB'")
    await connection.execute("SET work_mem = '256MB'")
    # Foreign-key triggers off while loading (needs a superuser, as the embedded
    # server's is): 20 million row-by-row look-ups otherwise. The keys are checked
    # below, all at once, with anti-joins.
    replica = True
    try:
        await connection.execute("SET session_replication_role = replica")
    except Exception as exc:  # not a superuser: load with the triggers on
        log(f"  session_replication_role refused ({type(exc).__name__}); FK triggers stay on")
        replica = False
    for name, sql in generation_steps(n, attendance, first_day, last_day, cutoff):
        step_started = time.perf_counter()
        status = await connection.execute(sql)
        steps[name] = time.perf_counter() - step_started
        log(f"  {name}: {status} in {steps[name]:.1f}s")
    if replica:
        await connection.execute("SET session_replication_role = origin")
    plan = await connection.fetchrow("SELECT * FROM bench_plan")
    await connection.execute("DROP TABLE IF EXISTS started, bench_plan")
    step_started = time.perf_counter()
    broken = {}
    if replica:
        for child, column, parent in FOREIGN_KEYS:
            missing = await connection.fetchval(
                f"SELECT count(*) FROM {child} c WHERE c.{column} IS NOT NULL"
                f" AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.id = c.{column})"
            )
            if missing:
                broken[f"{child}.{column}"] = int(missing)
        steps["foreign keys checked"] = time.perf_counter() - step_started
        log(f"  foreign keys checked in {steps['foreign keys checked']:.1f}s")
    if broken:
        raise RuntimeError(f"generated rows break foreign keys: {broken}")
    step_started = time.perf_counter()
    # The cohort table is filled by triggers as the referrals, steps and incidents go in
    # (rewritten as each arrives): vacuumed and analysed like the tables it comes from,
    # as autovacuum would after a bulk load, or its read is planned without statistics.
    for table in (*GENERATED_TABLES, "reoffending_cohort"):
        await connection.execute(f"VACUUM (ANALYZE) {table}")
    steps["VACUUM (ANALYZE)"] = time.perf_counter() - step_started
    log(f"  VACUUM (ANALYZE) in {steps['VACUUM (ANALYZE)']:.1f}s")
    total = time.perf_counter() - started
    counts = {}
    for table in GENERATED_TABLES:
        counts[table.strip('"')] = int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
    sizes = {
        row["name"]: int(row["bytes"])
        for row in await connection.fetch(
            "SELECT relname AS name, pg_total_relation_size(oid) AS bytes FROM pg_class"
            " WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
        )
    }
    shape = await connection.fetchrow(
        """
        SELECT count(*) AS referrals,
               count(*) FILTER (WHERE contacted_on IS NOT NULL) AS contacted,
               count(*) FILTER (WHERE engaged_on IS NOT NULL) AS engaged,
               count(*) FILTER (WHERE started_on IS NOT NULL) AS started,
               count(*) FILTER (WHERE completed_on IS NOT NULL) AS completed,
               count(*) FILTER (WHERE exit_on IS NOT NULL) AS exited,
               count(*) FILTER (WHERE prior_offence_on IS NOT NULL
                                   OR offence1_raw <= $1) AS with_incidents,
               count(*) FILTER (WHERE offence1_raw <= $1) AS reoffended
        FROM syn
        """,
        cutoff,
    )
    await connection.execute("DROP TABLE IF EXISTS syn")
    return {
        "seconds": total,
        "steps": steps,
        "rows": counts,
        "bytes": sizes,
        "database_bytes": int(
            await connection.fetchval("SELECT pg_database_size(current_database())")
        ),
        "shape": dict(shape),
        "attendance_plan": dict(plan),
        "foreign_key_triggers_during_load": not replica,
    }


# --- victims, their consent to contact and their feedback (encrypted as the project does) ---

VICTIMS_SECOND_SHARE = 0.15
"""A referral naming victims names a second one this often."""
CONSENT_GIVEN_SHARE = 0.75
NOTE_SHARE = 0.25
"""Feedback with a (free-text, encrypted) note."""

VICTIM_PLAN_SQL = f"""
CREATE TEMP TABLE victim_plan AS
WITH named AS (
    SELECT r.id AS referral, substr(r.reference, 5)::bigint AS i, r.received_on,
           r.relationship
    FROM referral r
    WHERE r.reference LIKE 'NAT-%' AND NOT (r.missing_details ? 'victims')
), milestones AS (
    SELECT referral,
           min(occurred_on) FILTER (WHERE type = 'started') AS started_on,
           min(occurred_on) FILTER (WHERE type = 'completed') AS completed_on
    FROM referral_event WHERE type IN ('started', 'completed') GROUP BY referral
)
SELECT md5('victim:' || n.i || ':' || k)::uuid AS id, n.referral, n.i * 4 + k AS j,
       n.received_on, m.started_on, m.completed_on,
       CASE WHEN k = 1 THEN n.relationship ELSE 'family_member' END AS relationship,
       pg_temp.u(n.i * 4 + k, 301) < {CONSENT_GIVEN_SHARE} AS consent_given
FROM named n
CROSS JOIN LATERAL generate_series(
    1, CASE WHEN pg_temp.u(n.i, 300) < {VICTIMS_SECOND_SHARE} THEN 2 ELSE 1 END) AS k
LEFT JOIN milestones m ON m.referral = n.referral
"""

# Feedback at the IMPACT time points, for victims who consented: at intake for most,
# at midpoint for those whose perpetrator started, at exit and six months on for those
# who completed. Later stages report stopped or reduced abuse more often.
FEEDBACK_PLAN_SQL = """
CREATE TEMP TABLE feedback_plan AS
SELECT md5('feedback:' || p.j || ':' || s.stage)::uuid AS id, p.id AS victim, s.stage,
       s.day AS collected_on,
       CASE WHEN pg_temp.u(p.j, 310 + s.n) < s.stopped THEN 'stopped'
            WHEN pg_temp.u(p.j, 310 + s.n) < s.stopped + s.reduced THEN 'reduced'
            WHEN pg_temp.u(p.j, 310 + s.n) < s.stopped + s.reduced + 0.45 THEN 'same'
            ELSE 'worse' END AS behaviour,
       CASE WHEN pg_temp.u(p.j, 320 + s.n) < 0.5 THEN 'yes'
            WHEN pg_temp.u(p.j, 320 + s.n) < 0.8 THEN 'unsure' ELSE 'no' END AS feels_safer,
       pg_temp.u(p.j, 330 + s.n) < $2 AS has_note
FROM victim_plan p
CROSS JOIN LATERAL (VALUES
    (1, 'intake', p.received_on + 7 + floor(pg_temp.u(p.j, 341) * 28)::int, 0.60, 0.05, 0.15),
    (2, 'midpoint', p.started_on + 84 + floor(pg_temp.u(p.j, 342) * 14)::int, 0.45, 0.15, 0.30),
    (3, 'exit', p.completed_on + floor(pg_temp.u(p.j, 343) * 21)::int, 0.50, 0.25, 0.35),
    (4, 'follow_up_6m', p.completed_on + 182 + floor(pg_temp.u(p.j, 344) * 21)::int,
     0.30, 0.30, 0.30)
) AS s(n, stage, day, share, stopped, reduced)
WHERE p.consent_given AND s.day IS NOT NULL AND s.day <= $1
  AND pg_temp.u(p.j, 350 + s.n) < s.share
"""


async def generate_victims(
    connection: Any, cutoff: date, encrypt: Callable[[str | None], str | None]
) -> dict[str, Any]:
    """Victims for the referrals that name them, with consent and feedback; returns timings.

    Contact details and feedback notes go through ``encrypt`` (the project's field
    cipher, one value at a time as its write path does) and in by COPY; the rest is
    worked out server-side like the referrals. Run after ``generate``.
    """
    steps: dict[str, float] = {}
    started = time.perf_counter()
    await connection.execute(UNIFORM_FUNCTION)
    await connection.execute("SET work_mem = '256MB'")

    async def step(name: str, sql: str, *args: Any) -> None:
        step_started = time.perf_counter()
        status = await connection.execute(sql, *args)
        steps[name] = time.perf_counter() - step_started
        log(f"  {name}: {status} in {steps[name]:.1f}s")

    await step("victim_plan (temp)", VICTIM_PLAN_SQL)
    step_started = time.perf_counter()
    victims = 0
    chunk: list[tuple[Any, ...]] = []
    async with connection.transaction():
        async for row in connection.cursor(
            "SELECT id, referral, j, relationship, received_on FROM victim_plan ORDER BY j",
            prefetch=20_000,
        ):
            j = row["j"]
            first = FIRST_NAMES[j % len(FIRST_NAMES)] if j % 7 else "Sarah"
            last = LAST_NAMES[(j // 7) % len(LAST_NAMES)] if j % 5 else None
            phone = "+4475" + str(j % 100_000_000).zfill(8) if j % 3 else None
            chunk.append(
                (
                    row["id"],
                    row["referral"],
                    encrypt(first),
                    encrypt(last),
                    encrypt(phone),
                    row["relationship"],
                    None,
                )
            )
            if len(chunk) >= 20_000:
                victims += len(chunk)
                await _copy_victims(connection, chunk)
                chunk = []
    if chunk:
        victims += len(chunk)
        await _copy_victims(connection, chunk)
    steps["victim (encrypted, COPY)"] = time.perf_counter() - step_started
    log(f"  victim: {victims:,} encrypted and copied in {steps['victim (encrypted, COPY)']:.1f}s")
    await step(
        "contact_consent",
        """
INSERT INTO contact_consent (id, victim, given, obtained_on, withdrawn_on, recorded_by)
SELECT md5('consent:' || j)::uuid, id, consent_given,
       received_on + floor(pg_temp.u(j, 302) * 10)::int, NULL, NULL
FROM victim_plan
""",
    )
    await step("feedback_plan (temp)", FEEDBACK_PLAN_SQL, cutoff, NOTE_SHARE)
    step_started = time.perf_counter()
    feedback = 0
    note = "Said how things have been at home since the last call."
    columns = ("id", "victim", "stage", "collected_on", "behaviour", "feels_safer", "note")
    chunk = []
    async with connection.transaction():
        async for row in connection.cursor(
            "SELECT * FROM feedback_plan ORDER BY collected_on", prefetch=20_000
        ):
            chunk.append(
                (
                    row["id"],
                    row["victim"],
                    row["stage"],
                    row["collected_on"],
                    row["behaviour"],
                    row["feels_safer"],
                    encrypt(note) if row["has_note"] else None,
                )
            )
            if len(chunk) >= 20_000:
                feedback += len(chunk)
                await connection.copy_records_to_table("feedback", records=chunk, columns=columns)
                chunk = []
    if chunk:
        feedback += len(chunk)
        await connection.copy_records_to_table("feedback", records=chunk, columns=columns)
    steps["feedback (encrypted notes, COPY)"] = time.perf_counter() - step_started
    log(f"  feedback: {feedback:,} copied in {steps['feedback (encrypted notes, COPY)']:.1f}s")
    await connection.execute("DROP TABLE IF EXISTS victim_plan, feedback_plan")
    step_started = time.perf_counter()
    for table in ("victim", "contact_consent", "feedback"):
        await connection.execute(f"VACUUM (ANALYZE) {table}")
    steps["VACUUM (ANALYZE)"] = time.perf_counter() - step_started
    counts = {
        table: int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
        for table in ("victim", "contact_consent", "feedback")
    }
    by_stage = {
        r["stage"]: int(r["n"])
        for r in await connection.fetch("SELECT stage, count(*) AS n FROM feedback GROUP BY 1")
    }
    return {
        "seconds": time.perf_counter() - started,
        "steps": steps,
        "rows": counts,
        "feedback_by_stage": by_stage,
    }


async def _copy_victims(connection: Any, records: list[tuple[Any, ...]]) -> None:
    await connection.copy_records_to_table(
        "victim",
        records=records,
        columns=(
            "id",
            "referral",
            "first_name",
            "last_name",
            "phone",
            "relationship",
            "recorded_by",
        ),
    )
