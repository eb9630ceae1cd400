#!/usr/bin/env python3
"""Runs idprune's generated warehouse SQL on a real engine, for tests/integration/warehouse.rs.

Reads one JSON job on stdin and writes one JSON answer on stdout:

  {"engine": "duckdb" | "postgres",
   "schema": "ps",
   "tables": {"user_identifiers": {"columns": [[name, type], ...], "rows": [[...], ...]}, ...},
   "loads": [{"table": "idprune_wanted", "csv": "/path/file.csv"}],   # postgres: \\copy's stand-in
   "statements": ["WITH ... ;", ...]}
  -> {"results": [{"columns": [...], "rows": [[...], ...]}, ...]}

  {"engine": "sqlglot", "dialect": "snowflake", "statements": [...]}
  -> {"results": [<number of parsed expressions>, ...]}

PostgreSQL runs as a throwaway cluster in a temporary directory, listening on 127.0.0.1 only
(as `nobody` when this runs as root, since postgres refuses root). A missing engine is an
error, never a skip.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile


def pg_bin(name):
    """A PostgreSQL server binary: on PATH, or in Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which(name)
    if found:
        return found
    base = "/usr/lib/postgresql"
    if os.path.isdir(base):
        for version in sorted(os.listdir(base), reverse=True):
            candidate = os.path.join(base, version, "bin", name)
            if os.path.exists(candidate):
                return candidate
    sys.exit(f"`{name}` (PostgreSQL server) is not installed; install Debian's `postgresql` package (apt-get install postgresql)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_user():
    """The command prefix that drops root to `nobody` (postgres refuses to run as root)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]


def value(v):
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def create_tables(cur, schema, tables, placeholder):
    cur.execute(f"CREATE SCHEMA {schema}")
    for name, table in tables.items():
        cols = ", ".join(f"{c} {t}" for c, t in table["columns"])
        cur.execute(f"CREATE TABLE {schema}.{name} ({cols})")
        marks = ", ".join([placeholder] * len(table["columns"]))
        for row in table["rows"]:
            cur.execute(f"INSERT INTO {schema}.{name} VALUES ({marks})", row)


def fetch(cur):
    columns = [d[0] for d in cur.description]
    return {"columns": columns, "rows": [[value(v) for v in row] for row in cur.fetchall()]}


def run_duckdb(job):
    import duckdb

    con = duckdb.connect()
    cur = con.cursor()
    create_tables(cur, job["schema"], job["tables"], "?")
    results = []
    for sql in job["statements"]:
        cur.execute(sql)
        results.append(fetch(cur))
    return results


def run_postgres(job):
    import psycopg

    tmp = tempfile.mkdtemp(prefix="idprune-pg-")
    data = os.path.join(tmp, "data")
    port = free_port()
    user = as_user()
    if user:
        os.chown(tmp, 65534, 65534)
    env = dict(os.environ, LC_ALL="C.UTF-8")
    server = None
    try:
        subprocess.run(user + [pg_bin("initdb"), "-D", data, "-U", "idprune", "-E", "UTF8",
                               "--locale=C.UTF-8", "-A", "trust"],
                       check=True, stdout=subprocess.DEVNULL, env=env)
        log = os.path.join(tmp, "server.log")
        opts = f"-h 127.0.0.1 -p {port} -k {tmp} -c fsync=off"
        # `pg_ctl start -w` returns once the server accepts connections (its own wait).
        started = subprocess.run(user + [pg_bin("pg_ctl"), "start", "-w", "-t", "120", "-D", data,
                                         "-l", log, "-o", opts],
                                 stdout=subprocess.DEVNULL, env=env)
        server = data
        if started.returncode != 0:
            sys.exit("postgres did not start:\n" + open(log).read())
        conn = psycopg.connect(f"host=127.0.0.1 port={port} user=idprune dbname=postgres",
                               autocommit=True)
        cur = conn.cursor()
        create_tables(cur, job["schema"], job["tables"], "%s")
        for load in job.get("loads", []):
            cur.execute(f"CREATE TEMP TABLE {load['table']} (id_type text, id_value text)")
            with open(load["csv"], "rb") as f, cur.copy(
                f"COPY {load['table']} (id_type, id_value) FROM STDIN WITH (FORMAT csv, HEADER true)"
            ) as copy:
                copy.write(f.read())
        results = []
        for sql in job["statements"]:
            cur.execute(sql)
            results.append(fetch(cur))
        conn.close()
        return results
    finally:
        if server is not None:
            subprocess.run(user + [pg_bin("pg_ctl"), "stop", "-m", "immediate", "-D", data],
                           stdout=subprocess.DEVNULL, env=env)
        shutil.rmtree(tmp, ignore_errors=True)


def run_sqlglot(job):
    import sqlglot

    results = []
    for sql in job["statements"]:
        parsed = sqlglot.parse(sql, read=job["dialect"], error_level=sqlglot.ErrorLevel.RAISE)
        results.append(len([p for p in parsed if p is not None]))
    return results


def main():
    job = json.load(sys.stdin)
    run = {"duckdb": run_duckdb, "postgres": run_postgres, "sqlglot": run_sqlglot}[job["engine"]]
    json.dump({"results": run(job)}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
