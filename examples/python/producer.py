#!/usr/bin/env python3
"""An example producer of bank transactions for recon, in Python.

It builds one bank transaction record for the topic recon.bank-transactions.v1
(schema: schemas/json/recon.bank-transactions.v1.schema.json), names it as recon
does, and either

* prints it (--dry-run): the record value, its Kafka key, its partition and its
  CloudEvents headers, as one JSON object, with no broker needed;
* POSTs it to recon's HTTP API (--api URL): ingest derives the id itself;
* produces it to Kafka (--bootstrap-servers HOST:PORT), with confluent-kafka
  (pip install confluent-kafka), whose default partitioner for keyed records
  is murmur2_random, Java-compatible: the partition this script prints.

Rules a producer writing straight to Kafka must keep (README, "Publishing to
recon's topics"):

* Key: the normalized account IBAN + "/" + direction, so that every sighting of
  one movement (webhook, camt.054, camt.053, producers) meets in one partition.
* Partition: Kafka's Java default partitioner: positive(murmur2(key)) % number
  of partitions, positive(x) = x & 0x7fffffff, murmur2 with seed 0x9747b28c.
  librdkafka's default ("consistent_random", CRC32) puts keys elsewhere: set
  partitioner=murmur2_random (confluent-kafka) or compute the partition here.
* Value: the JSON of the schema; amounts are strings ("262.50"), never numbers.
* id: recon's identity key (identity_key below); a record whose id is not the
  one its references give is refused by recon.

Only the standard library is used; the tests need pytest and jsonschema
(setup.sh installs them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import re
import sys
import urllib.request
from decimal import Decimal, InvalidOperation

TOPIC = "recon.bank-transactions.v1"
CE_TYPE = "dev.recon.bank-transaction.v1"

# The references that name a movement, in recon's order: the first present
# gives the identity key (recon.IdentityKey in identity.go). A mandate id is
# never one: every collection of a mandate carries it.
REFERENCE_KINDS = (
    ("acctsvcr", "bank_reference"),
    ("e2e", "end_to_end_id"),
    ("txid", "transaction_id"),
    ("entry", "entry_reference"),
)


def normalize_iban(iban: str) -> str:
    """An IBAN as recon compares and stores it: upper case, no spaces."""
    return "".join(iban.split()).upper()


def sighting_key(account: str, direction: str, kind: str, ref: str) -> str:
    """recon.SightingKey: "bt_" + hex of the first 12 bytes of
    sha256(normalized account NUL direction NUL kind NUL reference); "" for an
    empty or NOTPROVIDED reference."""
    ref = ref.strip()
    if ref == "" or ref.upper() == "NOTPROVIDED":
        return ""
    data = "\x00".join((normalize_iban(account), direction, kind, ref)).encode("utf-8")
    return "bt_" + hashlib.sha256(data).digest()[:12].hex()


def identity_key(txn: dict) -> str:
    """The id recon gives a sighting: from its first bank reference, else from
    the producer's own id (kind "producer"), as ingest does."""
    for kind, field in REFERENCE_KINDS:
        key = sighting_key(txn["account_iban"], txn["direction"], kind, txn.get(field, ""))
        if key:
            return key
    producer_id = txn.get("producer_id", "")
    return sighting_key(txn["account_iban"], txn["direction"], "producer", producer_id)


def partition_key(txn: dict) -> str:
    """recon.PartitionKey: the account and direction, the scope of identity."""
    return normalize_iban(txn["account_iban"]) + "/" + txn["direction"]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as an
    unsigned 32-bit value."""
    m, r, mask = 0x5BD1E995, 24, 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    tail, rest = length & ~3, length % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def partition(key: str, partitions: int) -> int:
    """The partition of a key among n, as Kafka's Java client (and recon's
    bus.Partition) chooses it: positive(murmur2(key)) % partitions."""
    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions


AMOUNT = re.compile(r"^[0-9]{1,18}(\.[0-9]{1,5})?$")


def amount(text: str) -> str:
    """An amount as recon takes it: a positive plain decimal string, at most 5
    digits after the point. Never a float."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"amount {text!r} is not a decimal") from None
    if not AMOUNT.match(text) or value <= 0:
        raise ValueError(f"amount {text!r} must be a positive plain decimal with at most 5 fraction digits")
    return text


def bank_transaction(**fields: str) -> dict:
    """A bank transaction record, named as recon names it. Empty fields are
    left out; producer_id is the producer's own id for the event."""
    txn = {k: v for k, v in fields.items() if v}
    txn["account_iban"] = normalize_iban(txn["account_iban"])
    if "virtual_iban" in txn:
        txn["virtual_iban"] = normalize_iban(txn["virtual_iban"])
    txn["amount"] = amount(txn["amount"])
    txn.setdefault("status", "booked")
    record = {"type": "transaction", "id": identity_key(txn), **txn}
    if not record["id"]:
        raise ValueError("a transaction needs a bank reference or a producer_id to be named")
    return record


def event(record: dict, partitions: int, source: str, now: dt.datetime) -> dict:
    """The Kafka record: key, partition, CloudEvents headers (binary mode) and
    value. ce_id names the sighting, so a redelivery carries the same one."""
    key = partition_key(record)
    return {
        "topic": TOPIC,
        "key": key,
        "partition": partition(key, partitions),
        "headers": {
            "ce_specversion": "1.0",
            "ce_id": record["id"] + "@" + source,
            "ce_type": CE_TYPE,
            "ce_source": source,
            "ce_time": now.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
            "content-type": "application/json",
        },
        "value": record,
    }


def post(api: str, token: str, record: dict) -> str:
    """POSTs the record to recon's API, which validates it and derives the same
    id; returns the answer's body."""
    body = json.dumps([record]).encode("utf-8")
    req = urllib.request.Request(api.rstrip("/") + "/v1/bank/transactions", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.read().decode("utf-8")


def produce(servers: str, ev: dict) -> None:
    """Produces the event to Kafka with confluent-kafka, to the partition
    computed here (the same murmur2_random would choose)."""
    from confluent_kafka import Producer  # only needed to produce for real

    p = Producer({"bootstrap.servers": servers, "enable.idempotence": True, "partitioner": "murmur2_random"})
    p.produce(ev["topic"], key=ev["key"].encode(), value=json.dumps(ev["value"]).encode(),
              partition=ev["partition"], headers=[(k, v.encode()) for k, v in ev["headers"].items()])
    if p.flush(30) != 0:
        raise RuntimeError("the record was not delivered within 30 s")


def main(argv: list[str]) -> int:
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("--account-iban", default="FR7630006000011234567890189", help="the lender's account")
    a.add_argument("--virtual-iban", default="FR7630001007941234567890185", help="the virtual IBAN paid to")
    a.add_argument("--direction", default="credit", choices=("credit", "debit"))
    a.add_argument("--amount", default="262.50")
    a.add_argument("--currency", default="EUR")
    a.add_argument("--booking-date", default="2026-04-01")
    a.add_argument("--bank-reference", default="")
    a.add_argument("--end-to-end-id", default="E2E-L-1-2026-04")
    a.add_argument("--transaction-id", default="")
    a.add_argument("--remittance-info", default="L-1 April instalment")
    a.add_argument("--producer-id", default="evt-0001", help="your own id for the event")
    a.add_argument("--source", default="example-producer")
    a.add_argument("--partitions", type=int, default=6, help="partitions of the topic (recon's --partitions)")
    mode = a.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dry-run", action="store_true", help="print record, key, partition and headers as JSON")
    mode.add_argument("--api", help="recon's base URL, e.g. http://localhost:8080")
    mode.add_argument("--bootstrap-servers", help="Kafka, e.g. localhost:19092")
    a.add_argument("--token", default="", help="bearer token with scope ingest, for --api")
    args = a.parse_args(argv)
    if args.partitions < 1:
        a.error("--partitions must be at least 1")
    try:
        record = bank_transaction(
            source=args.source, account_iban=args.account_iban, virtual_iban=args.virtual_iban,
            direction=args.direction, amount=args.amount, currency=args.currency, booking_date=args.booking_date,
            bank_reference=args.bank_reference, end_to_end_id=args.end_to_end_id, transaction_id=args.transaction_id,
            remittance_info=args.remittance_info, producer_id=args.producer_id)
    except ValueError as e:
        print(f"producer: {e}", file=sys.stderr)
        return 2
    ev = event(record, args.partitions, args.source, dt.datetime.now(dt.timezone.utc))
    if args.dry_run:
        json.dump(ev, sys.stdout, indent=2, ensure_ascii=False)
        print()
    elif args.api:
        print(post(args.api, args.token, record))
    else:
        produce(args.bootstrap_servers, ev)
        print(json.dumps({"produced": ev["value"]["id"], "partition": ev["partition"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
