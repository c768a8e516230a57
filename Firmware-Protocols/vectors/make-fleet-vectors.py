#!/usr/bin/env python3
"""Writes fleet.json, the fleet OTA test vectors, with an implementation independent of the
gateway's (Python's json, hmac and the `cryptography` package).

    pip install cryptography && python3 make-fleet-vectors.py > fleet.json

The keys are test keys from fixed seeds (the same as ota.json's): never use them for real.
"""
import hashlib
import hmac
import json
import struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization


def key(seed_hex):
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed_hex))
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return private, raw.hex(), hashlib.sha256(raw).hexdigest()[:32]


def canonical(value):
    # RFC 8785 for documents of ASCII keys and integers: sorted keys, no whitespace.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


OPERATOR = key("1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100")
ROGUE = key("5555555555555555555555555555555555555555555555555555555555555555")
DEPOT = key("d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef")
MANIFEST_DIGEST = hashlib.sha256(b"the signed bytes of a release manifest").hexdigest()
VEHICLE_KEY = bytes(range(32))
CAMPAIGN = "bus-ecu-1.1.0"


def document(signed, signers=(OPERATOR,), tamper=None):
    body = canonical(signed)
    signatures = [{"key_id": k[2], "sig": k[0].sign(body).hex()} for k in signers]
    sent = dict(signed)
    if tamper:
        sent.update(tamper)  # changed after signing: the signature no longer covers it
    text = json.dumps({"signed": sent, "signatures": signatures}, separators=(",", ":"))
    return {"bytes": text, "canonical": canonical(sent).decode(),
            "digest": hashlib.sha256(canonical(sent)).hexdigest()}


def campaign(name, sequence):
    return {"type": "tg-fleet-campaign-v1", "campaign": name, "sequence": sequence, "issued": 1795000000,
            "manifest": MANIFEST_DIGEST, "settings": {"waves": [50, 100], "success_pct": 90},
            "vehicle_key": VEHICLE_KEY.hex()}


def command(name, sequence, verb):
    return {"type": "tg-fleet-command-v1", "campaign": name, "sequence": sequence, "issued": 1795000100,
            "verb": verb}


first = document(campaign(CAMPAIGN, 1))
pause = document(command(CAMPAIGN, 2, "pause"))
orders = [
    dict(first, expect="take", why="the campaign, signed by a trusted key"),
    dict(first, expect="duplicate", why="the same document delivered again: nothing to do, not a refusal"),
    dict(pause, expect="take", why="a command above the campaign's sequence"),
    dict(document(command(CAMPAIGN, 3, "resume")), expect="take", why="sequence 3"),
    dict(pause, expect="replayed", why="sequence 2 again after 3: a replay"),
    dict(document(command(CAMPAIGN, 4, "cancel"), signers=(ROGUE,)), expect="untrusted_key",
         why="signed by a key the gateway does not trust"),
    dict(document(command(CAMPAIGN, 5, "cancel"), signers=()), expect="unsigned", why="no signature"),
    dict(document(command(CAMPAIGN, 6, "pause"), tamper={"verb": "abort"}), expect="bad_signature",
         why="a trusted key's signature over other bytes (verb changed after signing)"),
    dict(document(command("other-campaign", 1, "pause")), expect="unknown_campaign",
         why="a command for a campaign this gateway has no document of"),
    dict(document(dict(command(CAMPAIGN, 7, "pause"), priority=1)), expect="malformed",
         why="an unknown member in signed"),
    dict(document(campaign(CAMPAIGN, 8)), expect="refused", why="a second campaign document for a name in use"),
    dict(document(command(CAMPAIGN, 9, "abort")), expect="take", why="abort, above every sequence so far"),
]

def tally_vector():
    signed = {"type": "tg-fleet-tally-v1", "campaign": CAMPAIGN, "targets": 7, "finished": 3, "failures": 1,
              "installed": 2, "terminal": 3,
              "waves": [{"size": 4, "installed": 2, "terminal": 3}, {"size": 7, "installed": 2, "terminal": 3}],
              "ts_ms": 1795000200000}
    body = canonical(signed)

    def text(signer):
        return json.dumps({"signed": signed, "signatures": [{"key_id": signer[2], "sig": signer[0].sign(body).hex()}]},
                          separators=(",", ":"))
    return {"text": text(DEPOT), "canonical": body.decode(), "forged_text": text(ROGUE)}


blob = bytes(range(256)) * 3
sha = hashlib.sha256(blob).digest()
chunk = sha + struct.pack(">QQ", 256, len(blob)) + blob[256:512]
vin = "1TGSV000000000003"

vectors = {
    "trusted_keys": [OPERATOR[1]],
    "signature_threshold": 1,
    "orders": orders,
    "vehicle_name": {"vin": vin, "vehicle_key": VEHICLE_KEY.hex(),
                     "name": "ov-" + hmac.new(VEHICLE_KEY, vin.encode(), hashlib.sha256).digest()[:12].hex()},
    "chunk": {"sha256": sha.hex(), "offset": 256, "total": len(blob), "bytes_hex": blob[256:512].hex(),
              "encoded_hex": chunk.hex()},
    "fetch_request": {"text": json.dumps({"sha256": sha.hex(), "offset": 256, "length": 512}, separators=(",", ":")),
                      "sha256": sha.hex(), "offset": 256, "length": 512},
    "depot_keys": [DEPOT[1]],
    "tally": tally_vector(),
}
print(json.dumps(vectors, indent=1))
