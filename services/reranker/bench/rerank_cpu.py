"""CPU of the two per-request steps decision 1003b cut, in process (no server): parsing a 50-candidate
``RerankRequest`` body (JSON -> dict -> model vs ``model_validate_json`` on the bytes) and the learned ranker's
predict (a fresh array from the feature lists vs the reused per-thread buffer). Best of ``--repeat`` rounds:

    .venv/bin/python services/reranker/bench/rerank_cpu.py --candidates 50 --repeat 7
"""

from __future__ import annotations

import argparse
import json
import timeit

import numpy as np

from pickwise_common.ranking_features import FEATURE_NAMES, extract_features
from pickwise_common.schemas import Candidate, Constraints, Item, RerankRequest
from pickwise_reranker import learned_ranker
from pickwise_reranker.config import default_ranker_dir


def candidates(n: int) -> list[Candidate]:
    brands = ("Samsung", "Apple", "Realme", "OPPO", "Xiaomi")
    out = []
    for i in range(n):
        price = 6_000 + 900 * i
        item = Item(item_id=f"i{i}", title=f"{brands[i % 5]} Phone {i} (4 GB RAM, 64 GB)", brand=brands[i % 5],
                    model=f"Phone {i}", color="Black", ram_gb=4, storage_gb=64, price_inr=price,
                    original_price_inr=price * 1.1, discount_pct=10.0, rating=4.0 + (i % 9) / 10,
                    price_band="mid", group_id=f"g{i}")
        out.append(Candidate(item=item, bm25_score=10 - i / 10, dense_score=0.9 - i / 100, fused_score=1 - i / n,
                             satisfies={"price_max": i % 2 == 0}, variant_ids=[], popularity=float(i)))
    return out


def best_us(fn, repeat: int, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=200)
    args = parser.parse_args()
    cands = candidates(args.candidates)
    parsed = Constraints(brands=["Samsung"], price_max_inr=30_000)
    raw = json.dumps({"query": "samsung under 30k", "candidates": [c.model_dump(mode="json") for c in cands],
                      "parsed": parsed.model_dump(mode="json"), "k": 10, "user_id": "u1"}).encode()

    two_pass = best_us(lambda: RerankRequest.model_validate(json.loads(raw)), args.repeat, args.number)
    one_pass = best_us(lambda: RerankRequest.model_validate_json(raw), args.repeat, args.number)

    model = learned_ranker.load_newest(default_ranker_dir())
    assert model is not None
    rows = extract_features(cands, parsed)

    def fresh() -> list[float]:
        return [float(s) for s in model.booster.predict(np.asarray(rows, dtype=np.float64), num_threads=1)]

    def reused() -> list[float]:
        data = learned_ranker.feature_buffer(len(rows), len(FEATURE_NAMES))
        data[...] = rows
        return model.booster.predict(data, num_threads=1).tolist()

    assert fresh() == reused()
    old_predict = best_us(fresh, args.repeat, args.number)
    new_predict = best_us(reused, args.repeat, args.number)
    print(f"body {len(raw)} bytes, {args.candidates} candidates, best of {args.repeat} x {args.number}")
    print(f"parse: json.loads + model_validate {two_pass:.0f} us, model_validate_json {one_pass:.0f} us")
    print(f"predict: fresh array + list {old_predict:.0f} us, reused buffer + tolist {new_predict:.0f} us")


if __name__ == "__main__":
    main()
