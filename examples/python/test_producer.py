"""Checks the example producer against what recon computes (testdata/vectors.json,
written by `go test ./schemas/ -run TestPythonVectors -update`) and its records,
and recon's own, against the JSON Schemas of schemas/json."""

import json
import pathlib
import subprocess
import sys

import jsonschema
import pytest

import producer

HERE = pathlib.Path(__file__).resolve().parent
SCHEMAS = HERE.parent.parent / "schemas" / "json"
VECTORS = json.loads((HERE / "testdata" / "vectors.json").read_text(encoding="utf-8"))


def validator(topic):
    schema = json.loads((SCHEMAS / f"{topic}.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.parametrize("v", VECTORS["identity"], ids=lambda v: v["id"])
def test_identity_and_partition_keys_are_recons(v):
    txn = {k: v[k] for k in v if k not in ("id", "partition_key")}
    assert producer.identity_key(txn) == v["id"]
    assert producer.partition_key(txn) == v["partition_key"]


def test_murmur2_partitions_are_kafkas():
    assert len(VECTORS["partitions"]) > 50
    for v in VECTORS["partitions"]:
        assert producer.partition(v["key"], v["partitions"]) == v["partition"], v


def test_the_schemas_are_draft_2020_12_and_cover_every_sample_topic():
    topics = {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json")}
    assert "recon.bank-transactions.v1" in topics
    for topic in topics:
        validator(topic)
    assert {r["topic"] for r in VECTORS["records"]} == topics


@pytest.mark.parametrize("r", VECTORS["records"], ids=lambda r: r["topic"] + ":" + r["what"])
def test_what_recon_writes_validates(r):
    validator(r["topic"]).validate(r["value"])


def dry_run(*args):
    out = subprocess.run([sys.executable, str(HERE / "producer.py"), "--dry-run", *args],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def test_dry_run_prints_a_record_that_validates():
    ev = dry_run("--partitions", "12")
    rec = ev["value"]
    validator(ev["topic"]).validate(rec)
    props = json.loads((SCHEMAS / f"{ev['topic']}.schema.json").read_text())["$defs"]["BankTransaction"]["properties"]
    assert set(rec) <= set(props), "a field recon does not know"
    assert ev["key"] == producer.partition_key(rec) == "FR7630006000011234567890189/credit"
    assert rec["id"] == producer.identity_key(rec)
    assert ev["partition"] == producer.partition(ev["key"], 12)
    assert ev["headers"]["ce_type"] == "dev.recon.bank-transaction.v1"
    assert ev["headers"]["ce_specversion"] == "1.0"


def test_a_bank_reference_decides_the_id():
    ev = dry_run("--bank-reference", "ACSR-1", "--end-to-end-id", "E2E-1", "--transaction-id", "TX-1")
    want = next(v["id"] for v in VECTORS["identity"] if v.get("bank_reference") == "ACSR-1")
    assert ev["value"]["id"] == want


def test_without_references_the_producer_id_names_it():
    ev = dry_run("--end-to-end-id", "", "--producer-id", "evt-42")
    assert ev["value"]["id"] == producer.sighting_key(ev["value"]["account_iban"], "credit", "producer", "evt-42")
    validator(ev["topic"]).validate(ev["value"])


@pytest.mark.parametrize("change, why", [
    ({"amount": 262.5}, "is not of type 'string'"),
    ({"amount": "2.625e2"}, "does not match"),
    ({"direction": "in"}, "is not one of"),
    ({"id": "evt-1"}, "does not match"),
    ({"currency": "eur"}, "does not match"),
    ({"booking_date": "01/04/2026"}, "does not match"),
])
def test_the_schema_refuses(change, why):
    rec = dict(dry_run()["value"], **change)
    errors = list(validator("recon.bank-transactions.v1").iter_errors(rec))
    assert errors, "accepted"

    def messages(errs):  # the reasons under oneOf, as the bank transaction alternative gives them
        for e in errs:
            yield e.message
            yield from messages(e.context)
    assert any(why in m for m in messages(errors)), list(messages(errors))


@pytest.mark.parametrize("bad", ["0", "0.00", "-1", "1.000001", "1e3", "12,50", ""])
def test_amounts_are_checked_before_sending(bad):
    with pytest.raises(ValueError):
        producer.amount(bad)
