# Profile of the validation kernels in Pyodide under Node (issue 20): 200k rows of e-mail,
# pattern, length and uuid rules. Run:
#   node tests/conformance/pyodide_runner.mjs build/assets /tmp bench/pyodide/profile_kernels.py
# (after `make assets`); prints JSON: seconds, error count, the top of the profile.
import cProfile
import io
import json
import pstats
import random
import time

import arro3.core as ac

from pipeline.template import parse_template
from pipeline.validation import validate

rng = random.Random(5)  # noqa: S311 - test data
n = 200_000
emails = [
    f"user{rng.randrange(10**9)}@ex{rng.randrange(1000)}.com" if i % 100 else "bad at"
    for i in range(n)
]
codes = [f"AB-{rng.randrange(10**6):06d}" if i % 97 else "zz" for i in range(n)]
names = [f"Name {rng.randrange(10**8)}" + ("x" * 40 if i % 89 == 0 else "") for i in range(n)]
uuids = [
    f"{rng.randrange(16**8):08x}-1234-5678-9abc-{rng.randrange(16**12):012x}" for i in range(n)
]
t = ac.Table.from_pydict(
    {
        "email": ac.Array(emails, ac.DataType.string()),
        "code": ac.Array(codes, ac.DataType.string()),
        "name": ac.Array(names, ac.DataType.string()),
        "id": ac.Array(uuids, ac.DataType.string()),
    }
)
tpl = parse_template(
    {
        "fields": [
            {"name": "email", "format": "email"},
            {"name": "code", "constraints": {"pattern": "[A-Z]{2}-[0-9]{6}"}},
            {"name": "name", "constraints": {"maxLength": 30, "minLength": 2}},
            {"name": "id", "format": "uuid"},
        ]
    }
)
pr = cProfile.Profile()
t0 = time.perf_counter()
pr.enable()
errors = validate(t, tpl)
pr.disable()
elapsed = time.perf_counter() - t0
s = io.StringIO()
pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(12)
json.dumps({"elapsed": elapsed, "errors": len(errors), "profile": s.getvalue()})
