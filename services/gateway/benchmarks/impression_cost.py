"""Cost of the request-path part of impression logging: build the event of a 10-item search page and put it on
the queue (what the gateway adds to a /v1/search response)."""
import asyncio
import statistics
import time

from pickwise_common.public_api import RecommendationResponse
from pickwise_common.schemas import ParsedQuery
from pickwise_gateway.impressions import ImpressionLog, search_impression


class P:
    async def send(self, *a, **k):
        pass


async def main() -> None:
    response = RecommendationResponse.model_validate({
        "request_id": "req-1", "catalog": "flipkart", "query": "samsung 8gb ram under 20k",
        "items": [{"item_id": f"fm-{n:05d}", "title": "Samsung Galaxy M31 (Ocean Blue, 8 GB RAM, 128 GB)",
                   "price": 18654.0, "score": 0.9 - n / 100, "rank": n + 1} for n in range(10)],
        "parsed": ParsedQuery(brands=["samsung"], price_max_inr=20000, ram_gb_min=8).model_dump(),
        "variant": "A", "degraded": False, "degradation_reasons": [], "timings_ms": {"total": 40.0},
        "model_versions": {"ranker": "pickwise-ranker/3@champion"}})
    log = ImpressionLog(queue_max=1_000_000, producer=P())
    samples = []
    for _ in range(20_000):
        t = time.perf_counter()
        log.record(search_impression(response, endpoint="search", user_id="u1", session_id=None,
                                     experiment="ab"))
        samples.append((time.perf_counter() - t) * 1e6)
        log.queue.get_nowait()  # the drain task's part, outside the measurement: the queue stays short
    samples.sort()
    print(f"build+enqueue per search impression: p50 {statistics.median(samples):.1f} us, "
          f"p99 {samples[int(len(samples) * 0.99)]:.1f} us (n={len(samples)})")
    event = search_impression(response, endpoint="search", user_id="u1", session_id=None, experiment="ab")
    costs = []
    for _ in range(5000):
        t = time.perf_counter()
        event.model_dump_json()
        costs.append((time.perf_counter() - t) * 1e6)
    print(f"serialise (drain task, off the request path): p50 {statistics.median(costs):.1f} us")


asyncio.run(main())
