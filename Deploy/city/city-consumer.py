#!/usr/bin/python3
"""Reference consumer of the gateways' upstream messages: applies Firmware-Protocols/upstream.md.

It reads the city cluster's quorum queue "city-platform" (every gateway's {prefix}/{gateway_id}/...
messages) over AMQP with mutual TLS, and applies each message to a SQLite file the way the
contract says a consumer must:

- the gateway is the one named by the topic (the cluster lets a certificate publish only under
  its own gateway_id); a payload whose gateway_id says otherwise is refused and recorded;
- aggregates and events come in batches: a batch_id seen before is a copy (the gateway sends at
  least once) and is skipped as a whole;
- an aggregate window is keyed by (gateway, device, signal, window_s, start_ms); a higher
  revision replaces a lower one, a lower or equal one changes nothing, whatever the order;
- alerts are keyed by alert_id; status keeps the newest per gateway;
- an erasure notice (a vehicle forgotten on a board, `gwctl device forget`) deletes everything
  received from that gateway under the names it lists: aggregates, alerts, events and refused
  payloads. Only its id and the number of names are kept, so the notice cannot re-identify anyone;
- fleet OTA reports (kind `ota`, Firmware-Protocols/fleet-ota.md) are kept once per
  (gateway, report_id) in ota_reports.

A message is acknowledged only after its transaction committed, so a consumer killed at any
point loses nothing: the broker delivers the message again and the keys above drop the copy.
Several processes may run on the same queue and file (a consumer group).

  city-consumer.py --nodes 127.0.0.1:5671,... --ca ca.crt --cert c.crt --key c.key --db city.db
  city-consumer.py --apply FILE --db city.db   (FILE: a JSON list of {"topic", "payload"}; prints outcomes)
"""

import argparse
import json
import signal
import sqlite3
import ssl
import sys
import time

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches(batch_id TEXT PRIMARY KEY, gateway TEXT NOT NULL, kind TEXT NOT NULL,
    received_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS aggregates(gateway TEXT NOT NULL, device TEXT NOT NULL, signal TEXT NOT NULL,
    window_s INTEGER NOT NULL, start_ms INTEGER NOT NULL, count INTEGER NOT NULL, min REAL, max REAL,
    mean REAL, sum REAL, last REAL, revision INTEGER NOT NULL, batch_id TEXT NOT NULL,
    PRIMARY KEY(gateway, device, signal, window_s, start_ms));
CREATE TABLE IF NOT EXISTS alerts(alert_id TEXT PRIMARY KEY, gateway TEXT NOT NULL, device TEXT NOT NULL,
    type TEXT NOT NULL, subject TEXT, state TEXT NOT NULL, value REAL, ts_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events(batch_id TEXT NOT NULL, position INTEGER NOT NULL, gateway TEXT NOT NULL,
    device TEXT NOT NULL, type TEXT NOT NULL, ts_ms INTEGER, body TEXT NOT NULL, PRIMARY KEY(batch_id, position));
CREATE TABLE IF NOT EXISTS status(gateway TEXT PRIMARY KEY, state TEXT NOT NULL, ts_ms INTEGER, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS refused(topic TEXT NOT NULL, reason TEXT NOT NULL, payload BLOB,
    received_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS erasures(erasure_id TEXT PRIMARY KEY, gateway TEXT NOT NULL, names INTEGER NOT NULL,
    ts_ms INTEGER, received_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outcomes(outcome TEXT PRIMARY KEY, count INTEGER NOT NULL, bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ota_reports(gateway TEXT NOT NULL, report_id INTEGER NOT NULL, type TEXT NOT NULL,
    campaign TEXT, vehicle TEXT, state TEXT, ts_ms INTEGER, body TEXT NOT NULL, PRIMARY KEY(gateway, report_id));
"""

KINDS = ("aggregates", "alerts", "events", "status", "erasures", "ota")


def now_ms():
    return int(time.time() * 1000)


def open_db(path):
    db = sqlite3.connect(path, timeout=60, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(SCHEMA)
    return db


def refuse(db, topic, reason, payload):
    db.execute("INSERT INTO refused VALUES(?,?,?,?)", (topic, reason, payload, now_ms()))
    return "refused:" + reason


def apply_message(db, prefix, topic, payload):
    """Applies one message inside the caller's transaction; returns what happened."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != prefix or parts[2] not in KINDS:
        return refuse(db, topic, "unknown_topic", payload)
    gateway, kind = parts[1], parts[2]
    try:
        body = json.loads(payload)
    except ValueError:
        return refuse(db, topic, "malformed_json", payload)
    if not isinstance(body, dict):
        return refuse(db, topic, "not_an_object", payload)
    if "gateway_id" in body and body["gateway_id"] != gateway:
        return refuse(db, topic, "gateway_mismatch", payload)
    if kind == "ota":
        report_id, report_type = body.get("report_id"), body.get("type")
        if not isinstance(report_id, int) or not isinstance(report_type, str):
            return refuse(db, topic, "malformed_ota_report", payload)
        cursor = db.execute(
            "INSERT OR IGNORE INTO ota_reports VALUES(?,?,?,?,?,?,?,?)",
            (gateway, report_id, report_type, body.get("campaign"), body.get("vehicle"), body.get("state"),
             body.get("ts_ms"), payload.decode("utf-8", "replace")))
        return "applied" if cursor.rowcount == 1 else "duplicate"
    if kind == "status":
        ts = body.get("ts_ms")
        db.execute(
            "INSERT INTO status VALUES(?,?,?,?) ON CONFLICT(gateway) DO UPDATE SET state=excluded.state,"
            " ts_ms=excluded.ts_ms, body=excluded.body"
            " WHERE excluded.ts_ms IS NULL OR status.ts_ms IS NULL OR excluded.ts_ms >= status.ts_ms",
            (gateway, str(body.get("state", "")), ts, payload.decode("utf-8", "replace")))
        return "applied"
    if kind == "erasures":
        erasure_id, names = body.get("erasure_id"), body.get("vehicles")
        if not isinstance(erasure_id, str) or not isinstance(names, list) or not all(
                isinstance(name, str) for name in names):
            return refuse(db, topic, "malformed_erasure", payload)
        if db.execute("SELECT 1 FROM erasures WHERE erasure_id = ?", (erasure_id,)).fetchone():
            return "duplicate"
        for name in names:
            for table in ("aggregates", "alerts", "events"):
                db.execute("DELETE FROM %s WHERE gateway = ? AND device = ?" % table, (gateway, name))
            db.execute("DELETE FROM refused WHERE instr(payload, ?) > 0", (name.encode(),))
        db.execute("INSERT INTO erasures VALUES(?,?,?,?,?)",
                   (erasure_id, gateway, len(names), body.get("ts_ms"), now_ms()))
        return "applied"
    if kind == "alerts":
        alert_id = body.get("alert_id")
        if not isinstance(alert_id, str) or not isinstance(body.get("ts_ms"), int):
            return refuse(db, topic, "malformed_alert", payload)
        cursor = db.execute(
            "INSERT OR IGNORE INTO alerts VALUES(?,?,?,?,?,?,?,?,?)",
            (alert_id, gateway, str(body.get("device")), str(body.get("type")), body.get("subject"),
             str(body.get("state")), body.get("value"), body["ts_ms"], now_ms()))
        return "applied" if cursor.rowcount == 1 else "duplicate"
    batch_id, items = body.get("batch_id"), body.get("items")
    if not isinstance(batch_id, str) or not isinstance(items, list):
        return refuse(db, topic, "malformed_batch", payload)
    if kind == "aggregates" and not all(
            isinstance(item, dict) and isinstance(item.get("revision"), int)
            and None not in (item.get("device"), item.get("signal"), item.get("window_s"), item.get("start_ms"))
            for item in items):
        return refuse(db, topic, "malformed_aggregate", payload)
    if db.execute("SELECT 1 FROM batches WHERE batch_id = ?", (batch_id,)).fetchone():
        return "duplicate"
    db.execute("INSERT INTO batches VALUES(?,?,?,?)", (batch_id, gateway, kind, now_ms()))
    if kind == "events":
        for position, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            db.execute(
                "INSERT INTO events VALUES(?,?,?,?,?,?,?)",
                (batch_id, position, gateway, str(item.get("device")), str(item.get("type")), item.get("ts_ms"),
                 json.dumps(item, sort_keys=True)))
        return "applied"
    for item in items:
        key = (item["device"], item["signal"], item["window_s"], item["start_ms"])
        db.execute(
            "INSERT INTO aggregates VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(gateway, device, signal, window_s, start_ms) DO UPDATE SET count=excluded.count,"
            " min=excluded.min, max=excluded.max, mean=excluded.mean, sum=excluded.sum, last=excluded.last,"
            " revision=excluded.revision, batch_id=excluded.batch_id WHERE excluded.revision > aggregates.revision",
            (gateway, *key, item.get("count"), item.get("min"), item.get("max"), item.get("mean"), item.get("sum"),
             item.get("last"), item["revision"], batch_id))
    return "applied"


def apply_in_transaction(db, prefix, topic, payload):
    db.execute("BEGIN IMMEDIATE")
    try:
        outcome = apply_message(db, prefix, topic, payload)
        db.execute(
            "INSERT INTO outcomes VALUES(?, 1, ?) ON CONFLICT(outcome) DO UPDATE SET count = count + 1,"
            " bytes = bytes + excluded.bytes", (outcome.split(":")[0], len(payload)))
        db.execute("COMMIT")
        return outcome
    except BaseException:
        db.execute("ROLLBACK")
        raise


def log(event, **fields):
    line = " ".join(["level=info", "event=" + event] + ["%s=%s" % item for item in fields.items()])
    print(line, flush=True)


def consume(args):
    import pika  # Debian: python3-pika

    db = open_db(args.db)
    context = ssl.create_default_context(cafile=args.ca)
    context.load_cert_chain(args.cert, args.key)
    nodes = []
    for node in args.nodes.split(","):
        host, port = node.rsplit(":", 1)
        nodes.append(pika.ConnectionParameters(
            host=host, port=int(port), ssl_options=pika.SSLOptions(context, server_hostname=host),
            credentials=pika.credentials.ExternalCredentials(), heartbeat=5, connection_attempts=1,
            blocked_connection_timeout=30))
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    counts = {"applied": 0, "duplicate": 0, "refused": 0}
    start = 0
    while not stopping:
        # Every node in turn, from the one after the last that failed; a short pause once all refused.
        ordered = nodes[start:] + nodes[:start]
        try:
            connection = pika.BlockingConnection(ordered)
        except pika.exceptions.AMQPError as error:
            log("consumer_connect_failed", error=type(error).__name__)
            start = (start + 1) % len(nodes)
            time.sleep(0.5)
            continue
        log("consumer_connected", node="%s:%s" % (connection._impl.params.host, connection._impl.params.port))
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=args.prefetch)

            def on_message(channel, method, properties, body):
                # Routing key city.gw-01.aggregates is MQTT topic city/gw-01/aggregates.
                topic = method.routing_key.replace(".", "/")
                outcome = apply_in_transaction(db, args.prefix, topic, body)
                channel.basic_ack(method.delivery_tag)
                counts[outcome.split(":")[0]] += 1

            channel.basic_consume(args.queue, on_message, auto_ack=False)
            last = time.time()
            while not stopping:
                connection.process_data_events(time_limit=0.2)
                if time.time() - last >= args.stats_s:
                    last = time.time()
                    log("consumer_stats", **counts)
            connection.close()
        except (pika.exceptions.AMQPError, OSError) as error:
            log("consumer_connection_lost", error=type(error).__name__)
            start = (start + 1) % len(nodes)
    log("consumer_stopped", **counts)


def apply_file(args):
    db = open_db(args.db)
    for message in json.load(open(args.apply)):
        payload = message["payload"]
        raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        print(apply_in_transaction(db, args.prefix, message["topic"], raw))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--prefix", default="city")
    parser.add_argument("--apply")
    parser.add_argument("--nodes")
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--queue", default="city-platform")
    parser.add_argument("--prefetch", type=int, default=200)
    parser.add_argument("--stats-s", type=float, default=5)
    args = parser.parse_args()
    if args.apply:
        apply_file(args)
    elif args.nodes and args.ca and args.cert and args.key:
        consume(args)
    else:
        parser.error("give --apply FILE, or --nodes, --ca, --cert and --key")


if __name__ == "__main__":
    sys.exit(main())
