"""Result records: typed, verified, one folder per configuration.

- :class:`Record` -- base of the record kinds (``separation``, ``lipschitz_construct``, ``bounds``,
  ``evaluate``, ``training``, ``benchmark``), each a dataclass with a typed ``config`` (everything that
  changes the result) and ``result``;
- :func:`write_record`, :func:`load_record`, :func:`reusable`, :func:`find_records`;
- :class:`DataSpec` -- which data a record was computed on (by fingerprint);
- :class:`Meta` -- provenance: versions, git commit, hardware, time, command line;
- file helpers that never leave half-written files: :func:`atomic_write_bytes`, :func:`atomic_write_json`.

Benchmark records (:mod:`separation.core.records.benchmark`) hold competitors timed in one run.

``python -m separation.records migrate ROOT`` rewrites records of the first layout (schema 1) in the
current one; ``python -m separation.records verify ROOT`` checks every record below ``ROOT``.
"""
from ._codec import RecordFormatError, decode, encode
from ._io import atomic_write_bytes, atomic_write_json, canonical_json, folder_lock, read_json, sha256_file
from ._meta import Hardware, Meta, cpu_description, run_metadata, toolkit_version
from ._record import (ARRAYS_FILE, JOBS_GROUP, KINDS_GROUP, RECORD_FILE, SCHEMA, ArraysInfo, DataSpec, Record, RecordError,
                      RecordIntegrityError, RecordSet, find_records, label_of, load_record, record_class, reusable,
                      upgrade_envelope, write_record)

__all__ = ["ARRAYS_FILE", "ArraysInfo", "DataSpec", "Hardware", "JOBS_GROUP", "KINDS_GROUP", "Meta", "RECORD_FILE", "Record",
           "RecordError", "RecordFormatError", "RecordIntegrityError", "RecordSet", "SCHEMA", "atomic_write_bytes",
           "atomic_write_json", "canonical_json", "cpu_description", "decode", "encode", "find_records", "folder_lock", "label_of",
           "load_record", "read_json", "record_class", "reusable", "run_metadata", "sha256_file", "toolkit_version",
           "upgrade_envelope", "write_record"]
