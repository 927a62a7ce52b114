"""Generate a realistic synthetic claim file from the real ICD-10-CM code table.

    python -m examples.make_sample [-n 10000] [-o examples/claims_sample.csv] [--seed 7]

Codes are drawn from the bundled release (billable codes, a skewed mix as in real claims: a few
thousand common codes most of the time, any billable code sometimes), written with and without
dots and in either case. Planted on a few percent of lines: one problem of every edit kind.
Deterministic for a seed. No real patient data: claim ids and demographics are made up.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from coding.claim_rules import age_rule, sex_rule

HEADER = ["claim_id", "sex", "age", "service_date", *(f"dx{i}" for i in range(1, 7)), "dx_text"]
SERVICE_START, SERVICE_DAYS = date(2026, 4, 1), 183  # inside the bundled release's effective window
TEXTS = ["type 2 diabetes without complications", "chest pain on exertion", "acute bronchitis",
         "essential hypertension", "low back pain", "urinary tract infection", "migraine without aura"]
# (edit, how a line shows it): each planted on its own line, in turn
PLANTED = [
    ("INVALID_CODE", {"dx": ["E14.9", "I10"]}), ("INVALID_CODE", {"dx": ["XYZ.1"]}),
    ("NOT_BILLABLE", {"dx": ["E11", "I10"]}), ("MISSING_7TH_CHARACTER", {"dx": ["S52.501", "W19.XXXA"]}),
    ("EXCLUDES1_CONFLICT", {"dx": ["K50.90", "K51.90"]}), ("MANIFESTATION_FIRST", {"dx": ["F02.80", "G30.9"]}),
    ("EXTERNAL_CAUSE_FIRST", {"dx": ["W19.XXXA", "S72.001A"]}), ("DUPLICATE_CODE", {"dx": ["I10", "E11.9", "i10"]}),
    ("SEX_CONFLICT", {"dx": ["N40.0"], "sex": "F"}), ("SEX_CONFLICT", {"dx": ["O80", "Z3A.39"], "sex": "M"}),
    ("AGE_CONFLICT", {"dx": ["O80", "Z3A.39"], "sex": "F", "age": "71"}),
    ("AGE_CONFLICT", {"dx": ["P07.30"], "age": "45"}), ("NO_DIAGNOSIS", {"dx": []}),
    ("CODE_NOT_EFFECTIVE", {"dx": ["E11.9"], "service_date": "2019-05-01"}),
    ("MALFORMED_LINE", {"raw": "C{n},F,40,2026-05-01,I10"}), ("MALFORMED_LINE", {"dx": ["I10"], "age": "forty"}),
]


def billable_codes() -> list[str]:
    """Billable codes of the bundled release that fit any adult of either sex (planted lines aside)."""
    from coding.tabular import parse_release
    from db.loader import bundled_release_path

    codes = [c.code for c in parse_release(bundled_release_path()).codes if c.billable]
    return [c for c in codes if sex_rule(c) is None and age_rule(c) is None and c[0] not in "VWXY"]


def _written(code: str, rng: random.Random) -> str:
    shown = f"{code[:3]}.{code[3:]}" if len(code) > 3 and rng.random() < 0.8 else code
    return shown.lower() if rng.random() < 0.05 else shown


def lines(n: int, seed: int = 7, bad_rate: float = 0.03, text_rate: float = 0.01) -> Iterator[list[str] | str]:
    rng = random.Random(seed)
    codes = billable_codes()
    common = rng.sample(codes, 3000)
    weights = [1 / (rank + 10) for rank in range(len(common))]
    cum = [0.0]
    for w in weights:
        cum.append(cum[-1] + w)
    cum.pop(0)
    planted = 0
    for i in range(1, n + 1):
        sex = rng.choice("MF")
        age = str(rng.randint(18, 90))
        service = (SERVICE_START + timedelta(days=rng.randrange(SERVICE_DAYS))).isoformat()
        if rng.random() < bad_rate:
            edit, shape = PLANTED[planted % len(PLANTED)]
            planted += 1
            if "raw" in shape:
                yield shape["raw"].format(n=i)
                continue
            dx = shape["dx"]
            sex, age, service = shape.get("sex", sex), shape.get("age", age), shape.get("service_date", service)
        else:
            count = rng.choice((1, 2, 3, 3, 4, 4, 4, 5, 6))
            picked = dict.fromkeys(rng.choices(common, cum_weights=cum, k=count) if rng.random() < 0.9
                                   else rng.sample(codes, count))
            dx = [_written(c, rng) for c in picked]
        text = rng.choice(TEXTS) if rng.random() < text_rate else ""
        yield [f"C{i:08d}", sex, age, service, *(dx + [""] * 6)[:6], text]


def write(path: Path, n: int, seed: int = 7, bad_rate: float = 0.03, text_rate: float = 0.01) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for line in lines(n, seed, bad_rate, text_rate):
            if isinstance(line, str):
                handle.write(line + "\n")
            else:
                writer.writerow(line)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("-o", type=Path, default=Path(__file__).parent / "claims_sample.csv")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bad-rate", type=float, default=0.03)
    args = parser.parse_args()
    write(args.o, args.n, args.seed, args.bad_rate)
    print(f"wrote {args.n:,} lines to {args.o}")


if __name__ == "__main__":
    main()
