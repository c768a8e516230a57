#!/usr/bin/env python3
"""Writes ota.json, the OTA test vectors, with an implementation independent of the gateway's
(Python's json and the `cryptography` package), so the vectors also check that the two agree.

    pip install cryptography && python3 make-ota-vectors.py > ota.json

The keys are test keys from fixed seeds: never provision them in a real vehicle.
"""
import hashlib
import json
import struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

NOW = 1795000000  # the vehicle's trusted clock for the check vectors, unix seconds


def key(seed_hex):
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed_hex))
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return private, raw.hex(), hashlib.sha256(raw).hexdigest()[:32]


def canonical(value):
    # RFC 8785 for documents of ASCII keys and integers: sorted keys, no whitespace.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


OPERATOR = key("1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100")
SECOND = key("a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf")
ROGUE = key("5555555555555555555555555555555555555555555555555555555555555555")

OLD_IMAGE = b"TGU firmware 1.0.0 " + bytes(range(64)) + b" end"
NEW_IMAGE = b"TGU firmware 1.1.0 " + bytes(range(64)) + b" end, now with OTA!"


def uvarint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def svarint(n):
    return uvarint((n << 1) ^ (n >> 63) if n >= 0 else ((-n) << 1) - 1)


def patch():
    """A tgdiff1 patch built by hand from the format description, not by the gateway's encoder."""
    header = b"TGDIFF01" + struct.pack("<QQ", len(OLD_IMAGE), len(NEW_IMAGE))
    # Record 1: add over the first 83 bytes of the old image (it differs in "1.0.0" -> "1.1.0"),
    # then copy the new tail, seek 0.
    add_len = len(OLD_IMAGE) - 4  # everything before " end"
    diffs = bytes((NEW_IMAGE[i] - OLD_IMAGE[i]) & 0xFF for i in range(add_len))
    runs = bytearray()
    i = 0
    while i < add_len:
        zeros = 0
        while i + zeros < add_len and diffs[i + zeros] == 0:
            zeros += 1
        start = i + zeros
        end = start
        while end < add_len and diffs[end] != 0:
            end += 1
        runs += uvarint(zeros) + uvarint(end - start) + diffs[start:end]
        i = end
    copy = NEW_IMAGE[add_len:]
    return header + uvarint(add_len) + uvarint(len(copy)) + svarint(0) + bytes(runs) + copy


PATCH = patch()


def manifest(counter=2, hardware="tgu-1", targets=None, expires=NOW + 86400, created=NOW - 3600, deltas=True):
    signed = {
        "type": "tg-release-v1",
        "name": "bus-ecu",
        "version": "1.1.0",
        "release_counter": counter,
        "hardware_id": hardware,
        "length": len(NEW_IMAGE),
        "sha256": hashlib.sha256(NEW_IMAGE).hexdigest(),
        "deltas": [{
            "from_sha256": hashlib.sha256(OLD_IMAGE).hexdigest(),
            "patch_sha256": hashlib.sha256(PATCH).hexdigest(),
            "patch_length": len(PATCH),
            "format": "tgdiff1",
        }] if deltas else [],
        "targets": targets or {"vins": ["1TGSV000000000001", "1TGSV000000000002"]},
        "created": created,
        "expires": expires,
    }
    return signed


def sign(signed, keys):
    message = canonical(signed)
    return {"signed": signed, "signatures": [{"key_id": k[2], "sig": k[0].sign(message).hex()} for k in keys]}


VEHICLE = {"vin": "1TGSV000000000001", "hardware_id": "tgu-1", "installed_counter": 1,
           "installed_sha256": hashlib.sha256(OLD_IMAGE).hexdigest()}

base = manifest()
good = sign(base, [OPERATOR])
tampered = json.loads(json.dumps(good))
tampered["signed"]["release_counter"] = 3

checks = [
    ("valid: signed by the trusted key", good, 1, "ok"),
    ("valid with a threshold of 2: both keys signed", sign(base, [OPERATOR, SECOND]), 2, "ok"),
    ("threshold 2 but one key signed twice", sign(base, [OPERATOR, OPERATOR]), 2, "bad_signature"),
    ("a field changed after signing", tampered, 1, "bad_signature"),
    ("signed by a key the vehicle does not trust", sign(base, [ROGUE]), 1, "untrusted_key"),
    ("for other hardware", sign(manifest(hardware="tgu-2"), [OPERATOR]), 1, "wrong_hardware"),
    ("this VIN is not targeted", sign(manifest(targets={"vins": ["1TGSV000000000009"]}), [OPERATOR]), 1, "not_targeted"),
    ("every vehicle of the hardware", sign(manifest(targets={"all": True}), [OPERATOR]), 1, "ok"),
    ("same counter as installed: downgrade", sign(manifest(counter=1), [OPERATOR]), 1, "rollback"),
    ("expired by the vehicle's clock", sign(manifest(expires=NOW, created=NOW - 10), [OPERATOR]), 1, "expired"),
]
trusted = [OPERATOR[1], SECOND[1]]

check_vectors = []
for name, document, threshold, result in checks:
    check_vectors.append({"name": name, "threshold": threshold, "manifest": document, "result": result})
check_vectors.append({
    "name": "unknown field in signed (refused: it could carry meaning the vehicle ignores)",
    "threshold": 1,
    "manifest": sign(dict(base, note="hi"), [OPERATOR]),
    "result": "malformed_manifest"})
check_vectors.append({
    "name": "float where an integer belongs",
    "threshold": 1,
    "manifest_text": json.dumps(good).replace('"release_counter": 2', '"release_counter": 2.0'),
    "result": "malformed_manifest"})


def without(signed, member):
    return {k: v for k, v in signed.items() if k != member}


MAX_INTEGER = 2 ** 53 - 1
for name, document in [
    ("deltas missing (every member is required; no deltas is [])", sign(without(base, "deltas"), [OPERATOR])),
    ("an extra member beside signed and signatures", dict(good, comment="hi")),
    ("release_counter above 2^53 - 1 (doubles would change it)",
     sign(manifest(counter=MAX_INTEGER + 1), [OPERATOR])),
    ("targets {\"all\": false}", sign(manifest(targets={"all": False}), [OPERATOR])),
    ("targets with both all and vins",
     sign(manifest(targets={"all": True, "vins": ["1TGSV000000000001"]}), [OPERATOR])),
    ("an unknown member in a delta", sign(dict(base, deltas=[dict(base["deltas"][0], note="x")]), [OPERATOR])),
]:
    check_vectors.append({"name": name, "threshold": 1, "manifest": document, "result": "malformed_manifest"})
check_vectors.append({
    "name": "release_counter 2^53 - 1: the largest allowed",
    "threshold": 1,
    "manifest": sign(manifest(counter=MAX_INTEGER), [OPERATOR]),
    "result": "ok"})

offer = {"campaign": 7, "manifest": good, "file": {"kind": "delta", "sha256": hashlib.sha256(PATCH).hexdigest(),
         "length": len(PATCH), "block_size": 1024}}

header = struct.pack(">BBHIII", 1, 1, 0, 7, 0, len(PATCH))


def offer_with(**changes):
    changed = json.loads(json.dumps(offer))
    for path, value in changes.items():
        target = changed
        keys = path.split("__")
        for k in keys[:-1]:
            target = target[k]
        if value is None:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return json.dumps(changed, separators=(",", ":"))


# What a vehicle answers to offers it cannot work on (ota.md section 5): `rejected` with a reason
# when the campaign can be read, nothing (a log line) when it cannot.
offers_invalid = [
    ("an unknown member in signed", offer_with(manifest=sign(dict(base, note="hi"), [OPERATOR])), "malformed_manifest"),
    ("release_counter 11.0", offer_with().replace('"release_counter":2', '"release_counter":11.0'), "malformed_manifest"),
    ("deltas missing", offer_with(manifest=sign(without(base, "deltas"), [OPERATOR])), "malformed_manifest"),
    ("an extra member beside signed and signatures", offer_with(manifest=dict(good, extra=1)), "malformed_manifest"),
    ("manifest missing", offer_with(manifest=None), "malformed_manifest"),
    ("block_size below 1024", offer_with(file__block_size=512), "malformed_offer"),
    ("block_size above 262144", offer_with(file__block_size=262145), "malformed_offer"),
    ("file.kind neither full nor delta", offer_with(file__kind="image"), "malformed_offer"),
    ("file.sha256 in upper case", offer_with(file__sha256=hashlib.sha256(PATCH).hexdigest().upper()), "malformed_offer"),
    ("file missing", offer_with(file=None), "malformed_offer"),
    ("campaign 0", offer_with(campaign=0), None),
    ("campaign above 2^32 - 1", offer_with(campaign=2 ** 32), None),
    ("not JSON", "{\"campaign\":7,", None),
]
offers_ignoring = [
    ("an unknown member of the offer (ignored: the offer is unsigned transport)", offer_with(priority="high")),
    ("an unknown member of file", offer_with(file__chunking="none")),
]

vectors = {
    "now": NOW,
    "keys": [{"seed": s, "public_key": p, "key_id": k, "role": r} for (s, p, k, r) in [
        ("1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100", OPERATOR[1], OPERATOR[2], "trusted"),
        ("a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf", SECOND[1], SECOND[2], "trusted"),
        ("5555555555555555555555555555555555555555555555555555555555555555", ROGUE[1], ROGUE[2], "untrusted"),
    ]],
    "trusted_keys": trusted,
    "signing": {
        "signed": base,
        "canonical": canonical(base).decode(),
        "canonical_sha256": hashlib.sha256(canonical(base)).hexdigest(),
        "signature": good["signatures"][0]["sig"],
    },
    "vehicle": VEHICLE,
    "checks": check_vectors,
    "images": {"old_hex": OLD_IMAGE.hex(), "new_hex": NEW_IMAGE.hex(), "patch_hex": PATCH.hex()},
    "messages": {
        "offer": {"topic": "v1/ota/1TGSV000000000001/offer", "payload": json.dumps(offer, separators=(",", ":"))},
        "offers_invalid": [
            {"name": name, "payload": payload,
             "status": {"campaign": 7, "state": "rejected", "reason": reason} if reason else None}
            for name, payload, reason in offers_invalid],
        "offers_accepted": [{"name": name, "payload": payload} for name, payload in offers_ignoring],
        "get": [
            {"payload": '{"campaign":7,"file":"delta","first":0,"count":32}', "blocks": list(range(32))},
            {"payload": '{"campaign":7,"file":"full","first":64,"mask":5}', "blocks": [64, 66]},
            {"payload": '{"campaign":7,"file":"delta","first":0,"count":33}', "error": True},
            {"payload": '{"campaign":7,"file":"delta","first":0,"count":4,"mask":15}', "error": True},
            {"payload": '{"campaign":0,"file":"delta","first":0,"count":1}', "error": True},
            {"payload": '{"campaign":7,"file":"image","first":0,"count":1}', "error": True},
        ],
        "data": {
            "topic": "v1/ota/1TGSV000000000001/data",
            "payload_hex": (header + PATCH).hex(),
            "header": {"version": 1, "file": "delta", "campaign": 7, "block": 0, "length": len(PATCH)},
        },
        "data_invalid": [
            {"name": "length field larger than the bytes", "payload_hex": struct.pack(">BBHIII", 1, 0, 0, 7, 0, 10).hex() + "00" * 9},
            {"name": "unknown version", "payload_hex": struct.pack(">BBHIII", 2, 0, 0, 7, 0, 1).hex() + "00"},
            {"name": "unknown file kind", "payload_hex": struct.pack(">BBHIII", 1, 2, 0, 7, 0, 1).hex() + "00"},
            {"name": "shorter than the header", "payload_hex": "0100000000000007"},
        ],
        "status": [
            {"payload": '{"campaign":0,"state":"idle","installed":{"hardware_id":"tgu-1","version":"1.0.0","counter":1,"sha256":"%s"}}' % hashlib.sha256(OLD_IMAGE).hexdigest()},
            {"payload": '{"campaign":7,"state":"downloading","blocks_done":1,"blocks_total":1,"fetched_blocks":1}'},
            {"payload": '{"campaign":7,"state":"rejected","reason":"bad_signature","detail":"0 valid signature(s) from trusted keys, 1 needed"}'},
            {"payload": '{"campaign":7,"state":"sleeping"}', "error": True},
        ],
        "cmd": [
            {"payload": '{"campaign":7,"command":"pause"}'},
            {"payload": '{"campaign":7,"command":"resume"}'},
            {"payload": '{"campaign":7,"command":"cancel"}'},
        ],
    },
}
print(json.dumps(vectors, indent=1))
