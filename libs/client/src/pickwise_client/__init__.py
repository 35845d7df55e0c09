"""Typed client for the Pickwise gateway API: ``Client`` / ``AsyncClient``, the API's models, typed errors."""

from pickwise_client.client import AsyncClient, Client
from pickwise_client.errors import (
    InvalidRequest,
    NotFound,
    PickwiseAPIError,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    UnexpectedResponse,
)
from pickwise_common.public_api import (
    BatchResult,
    EventResult,
    FeedItem,
    FeedResponse,
    PopularResponse,
    RecommendationRequest,
    RecommendationResponse,
    ResultItem,
    SimilarResponse,
)
from pickwise_common.schemas import (
    BoughtTogetherResponse,
    Candidate,
    ClickIn,
    Constraints,
    ErrorField,
    EventAccepted,
    EventIn,
    Item,
)

__all__ = [
    "AsyncClient", "BatchResult", "BoughtTogetherResponse",
    "Candidate", "ClickIn", "Client", "Constraints", "ErrorField", "EventAccepted",
    "EventIn", "EventResult", "FeedItem", "FeedResponse", "InvalidRequest", "Item", "NotFound", "PickwiseAPIError",
    "PopularResponse", "RateLimited", "RecommendationRequest", "RecommendationResponse", "ResultItem",
    "ServerError", "ServiceUnavailable", "SimilarResponse", "Unauthorized", "UnexpectedResponse",
]
