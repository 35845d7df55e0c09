"""Reworded copy of the dev set (same judgments, templated paraphrases per query kind), to check that the
query parser generalises beyond the dev phrasings: python data-pipeline/scripts/paraphrase_dev.py OUT.jsonl"""

import json
import random
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "data" / "eval" / "flipkart_dev.jsonl"
rng = random.Random(3)
out = []
for line in open(SRC):
    d = json.loads(line)
    q = d["query"]
    k = d["kind"]

    def num(s):
        return int(s)

    p = None
    if k == "cheapest":
        b = re.sub(r"^cheapest (.*) phones$", r"\1", q)
        p = rng.choice(
            [
                f"lowest priced {b} mobile",
                f"{b} phones sorted by price low to high",
                f"most affordable {b} handsets",
                f"{b} phone with the lowest price",
            ]
        )
    elif k == "discount":
        b = q.split(" phones")[0]
        p = rng.choice(
            [
                f"{b} mobiles on huge discount",
                f"heavily discounted {b} phones",
                f"{b} phone deals with big savings",
                f"{b} with at least 25% off",
            ]
        )
    elif k == "rated":
        b = re.sub(r"^(best reviewed|top rated) (.*) (mobile|phone)$", r"\2", q)
        p = rng.choice(
            [
                f"highest rated {b} phones",
                f"{b} phone with the best ratings",
                f"top-rated {b} smartphone",
                f"well reviewed {b} mobiles",
            ]
        )
    elif k == "above":
        n = int(re.findall(r"\d+", q)[0])
        p = rng.choice(
            [
                f"phones costing more than ₹{n:,}",
                f"mobile phones priced above {n // 1000}k",
                f"smartphones over Rs {n}",
                f"handsets starting from {n // 1000} thousand",
            ]
        )
    elif k == "under":
        b = q.split()[0]
        n = int(re.findall(r"\d+", q)[0])
        p = rng.choice(
            [
                f"{b} phones less than {n // 1000}k",
                f"{b} mobile within ₹{n:,}",
                f"{b} handset for under {n // 1000} thousand",
                f"{b} smartphone not more than Rs. {n}",
            ]
        )
    elif k == "ram_under":
        r, n = re.findall(r"\d+", q)[:2]
        p = rng.choice(
            [
                f"{r} gigs of ram phone below {int(n) // 1000}k",
                f"mobile having {r}GB RAM for less than ₹{int(n):,}",
                f"{r} gb memory smartphone under {int(n) // 1000} thousand",
            ]
        )
    elif k == "between":
        a, b2 = re.findall(r"\d+", q)[:2]
        p = rng.choice(
            [
                f"phones in the {int(a) // 1000}-{int(b2) // 1000}k range",
                f"mobiles priced between ₹{int(a):,} and ₹{int(b2):,}",
                f"smartphone from {int(a) // 1000}k to {int(b2) // 1000}k",
            ]
        )
    elif k == "ram_storage":
        r, s = re.findall(r"\d+", q)[:2]
        p = rng.choice(
            [f"{r}/{s} phone", f"mobile with {r}GB RAM + {s}GB ROM", f"{r} gb ram {s} gb internal storage smartphone"]
        )
    elif k == "storage":
        b = q.split()[0]
        s = re.findall(r"\d+", q)[0]
        p = rng.choice([f"{b} phone with {s} GB internal memory", f"{b} {s}gb variant", f"{b} mobile having {s}GB ROM"])
    elif k == "keypad":
        n = int(re.findall(r"\d+", q)[0])
        p = rng.choice(
            [f"feature phone below ₹{n:,}", f"button mobile under Rs {n}", f"simple keypad mobile within {n}"]
        )
    elif k == "model":
        p = q + " phone" if rng.random() < 0.5 else q.lower()
    out.append({"qid": d["qid"] + "-p", "kind": k, "query": p, "judgments": d["judgments"]})
with open(sys.argv[1], "w") as f:
    for o in out:
        f.write(json.dumps(o) + "\n")
