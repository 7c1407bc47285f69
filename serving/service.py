"""The BentoML service: the champion over HTTP, reloaded when the champion moves; while
an online experiment runs, the challenger too, for its share of customers.

Endpoints are thin: they validate input (pydantic, 4xx naming the field), ask the
:class:`models.ranking.engine.Engine` of the currently loaded model, and queue a prediction log
record. The model is loaded once per worker; a poller swaps in a new champion atomically
(requests in flight keep the engine they started with); a model that fails to load is
logged, the old one keeps serving and the failed version is retried only after a pause.
With pseudonymisation on, customer ids are replaced by their pseudonym on arrival: the
model knows customers only by pseudonym, and raw ids never reach the prediction log.
A customer (else a visitor's ``session_id``) is assigned to the champion or the
challenger by :func:`models.experiments.assignment.assign`: the same side on every
request and worker; every answer and log record names its variant.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import inspect
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Annotated, Any, TypeVar

import bentoml
import pandas as pd
import sqlalchemy as sa
from bentoml.exceptions import BentoMLException
from pydantic import Field
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from infra import events as live_events
from infra import registry
from infra.lake import segment_members
from infra.settings import Settings
from models.data.contract import pseudonym
from models.data.live import check_events
from models.data.predictions import Feedback, FeedbackEvent, ListEndpoint, Served
from models.evaluation.tasks import variant
from models.experiments.assignment import (
    CHALLENGER,
    CHAMPION,
    Experiment,
    Variant,
    assign,
    experiment_name,
)
from models.ranking.catalogue import apply_items
from models.ranking.engine import Answer, Engine
from models.ranking.policies import Filters
from serving import store
from serving.changes import ChangeLog
from serving.limits import BodyLimit, JsonOnly
from serving.openapi import SpecRewrite
from serving.predlog import PredictionLog
from serving.schemas import (
    MAX_AUDIENCE,
    MAX_ITEMS,
    MAX_LIST,
    Attributes,
    AudienceAnswer,
    AudienceMember,
    BundleAnswer,
    BundleItem,
    BundlePrice,
    CatalogueAck,
    EventsAck,
    ExperimentInfo,
    FeedbackAck,
    FiltersIn,
    Id,
    Item,
    ItemChange,
    K,
    Metadata,
    Price,
    Recommendations,
    RejectedEvent,
    SessionId,
)

log = logging.getLogger("cartlift.serving")
NO_FILTERS = FiltersIn()
STOCKED = Filters()  # a bundle never offers an item out of stock
A = TypeVar("A", bound=Answer)
RETRY_FAILED_SECONDS = 60.0  # a champion that failed to load is tried again after this
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")


@dataclass(frozen=True)
class Assigned:
    """The model a request is answered by, its variant and the experiment (if one runs)."""

    loaded: store.Loaded
    variant: Variant
    experiment: str | None  # the running experiment's name (its salt)


class ApiError(Exception):
    """A request the service refuses: its status and a JSON body ``{"error": ...}`` naming
    the cause. Raised inside an endpoint, answered by :func:`json_errors` (BentoML would
    answer 401 with "Authorization error" and wrap other 4xx messages in a list)."""

    def __init__(self, status: HTTPStatus, error: str):
        super().__init__(error)
        self.status = status


class NotReadyError(RuntimeError):
    """No model is loaded; the message says why, in words a shop's developer can act on."""


def json_errors(method: Callable) -> Callable:
    """An endpoint whose refusals (:class:`ApiError`) are JSON bodies naming the cause, and
    which answers 503 with the cause and a ``Retry-After`` header while no model is loaded
    (BentoML replaces the message of any 5xx it builds with "An unexpected error has
    occurred")."""

    def refused(
        service: Cartlift, exc: NotReadyError | ApiError, ctx: bentoml.Context | None
    ) -> JSONResponse:
        if isinstance(exc, ApiError):
            answer = JSONResponse({"error": str(exc)}, status_code=exc.status)
        else:
            body, headers = service.not_ready_body(str(exc))
            status = HTTPStatus.SERVICE_UNAVAILABLE
            answer = JSONResponse(body, status_code=status, headers=headers)
        if ctx is not None:  # BentoML sets an endpoint with a context to the context's status
            ctx.response.status_code = answer.status_code
        return answer

    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def answer_async(self, *args, **kwargs):
            try:
                return await method(self, *args, **kwargs)
            except (NotReadyError, ApiError) as exc:
                return refused(self, exc, kwargs.get("ctx"))

        return answer_async

    @functools.wraps(method)
    def answer(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (NotReadyError, ApiError) as exc:
            return refused(self, exc, kwargs.get("ctx"))

    return answer


# Worker count and logging must be known when the class is declared: read once, at import.
_SERVING = Settings().serving


@bentoml.service(
    name="cartlift",
    traffic={"timeout": 10},
    workers=_SERVING.workers,
    logging={"access": {"enabled": _SERVING.access_log}},
    metrics={"enabled": _SERVING.metrics},
    # OpenTelemetry spans cost CPU on every request even with no exporter: off unless asked.
    tracing={"excluded_urls": None if _SERVING.tracing else ".*"},
)
class Cartlift:
    def __init__(self) -> None:
        self.settings = Settings()
        self.current: store.Loaded | None = None
        self.trial: store.Trial | None = None  # the challenger, while an experiment runs
        self.changes = ChangeLog(self.settings.serving_dir / "catalogue_changes.jsonl")
        self.watch = store.RegistryWatch(self.settings, self.settings.serving.reload_seconds)
        self._swap = threading.Lock()
        self._failed: dict[str, float] = {}  # version -> when it failed to load
        self._cause = "starting: the champion is being loaded"  # why nothing is served
        key = self.settings.pseudonymise_key
        self._key = key.get_secret_value() if key else None
        self.predictions = PredictionLog(
            self.settings.predictions_dir,
            self.settings.serving.log_flush_seconds,
            _log_counter() if self.settings.serving.metrics else None,
        )
        self._events: sa.Engine | None = None
        self._stop = threading.Event()
        self.reload()
        self._poller = threading.Thread(target=self._poll, name="registry-poller", daemon=True)
        self._poller.start()

    # --- model lifecycle ------------------------------------------------------------

    def reload(self) -> str | None:
        """Load the champion if it differs from the loaded version, load or drop the
        challenger as an experiment starts or ends, and apply catalogue changes written
        since; returns the champion's version served."""
        with self._swap:
            version = None
            try:
                found = self.watch.aliases()
                version = None if found.champion is None else str(found.champion)
                if version is None:
                    self._cause = (
                        f"no champion yet: no version of '{self.settings.registered_model}' "
                        "holds the alias 'champion' in the registry; run `cartlift pipeline` "
                        "(its quality gate promotes the first version good enough to serve)"
                    )
                    log.warning("No champion in the registry yet: not ready")
                elif self._is_new(version) and not self._failed_recently(version):
                    loaded = self._with_changes(store.load(self.settings, version))
                    previous = self.current.version if self.current else None
                    self.current = loaded  # one reference swap: atomic for readers
                    log.info("Serving version %s (was %s)", version, previous)
                self._reload_trial(found)
                self._catch_up()
            except Exception as exc:  # a bad new model must never take the service down
                if version:
                    self._failed[version] = time.monotonic()
                self._cause = (
                    f"the champion (version {version}) failed to load "
                    f"({type(exc).__name__}: {exc}); it is tried again every "
                    f"{RETRY_FAILED_SECONDS:.0f} s"
                    if version
                    else f"the registry could not be read ({type(exc).__name__}: {exc})"
                )
                log.exception(
                    "Loading champion version %s failed; still serving version %s "
                    "(%s); trying again in %.0f s",
                    version,
                    self.current.version if self.current else "none",
                    "ready" if self.current else "not ready",
                    RETRY_FAILED_SECONDS,
                )
        return self.current.version if self.current else None

    def _reload_trial(self, found: registry.Aliases) -> None:
        """Load the challenger while an experiment runs, drop it once it ends. A
        challenger that fails to load leaves the champion answering everyone."""
        if found.challenger is None or self.current is None:
            if self.trial is not None:
                log.info("Experiment over: the champion answers everyone")
            self.trial = None
            return
        version = str(found.challenger)
        experiment = Experiment(version, found.share, self._salt(version))
        trial = self.trial
        if trial is not None and trial.loaded.version == version:
            if trial.experiment != experiment:  # the share moved
                self.trial = replace(trial, experiment=experiment)
            return
        if self._failed_recently(version):
            return
        try:
            loaded = self._with_changes(store.load(self.settings, version))
        except Exception:
            self._failed[version] = time.monotonic()
            self.trial = None
            log.exception(
                "Loading challenger version %s failed: the champion (version %s) answers "
                "everyone; trying again in %.0f s",
                version,
                self.current.version,
                RETRY_FAILED_SECONDS,
            )
            return
        self.trial = store.Trial(experiment, loaded)
        log.info(
            "Experiment: challenger version %s answers %.1f%% of customers, champion "
            "version %s the rest",
            version,
            100 * found.share,
            self.current.version,
        )

    def _salt(self, challenger: str) -> str:
        """Names the experiment (the challenger's version): each one splits afresh."""
        return experiment_name(
            self.settings.registered_model, self.settings.challenger_alias, challenger
        )

    def _is_new(self, version: str) -> bool:
        return self.current is None or self.current.version != version

    def _failed_recently(self, version: str) -> bool:
        when = self._failed.get(version)
        return when is not None and time.monotonic() - when < RETRY_FAILED_SECONDS

    def _with_changes(self, loaded: store.Loaded) -> store.Loaded:
        """``loaded`` with the whole catalogue change log applied to its trained bundle."""
        size, frame = self.changes.size(), self.changes.read()
        if len(frame):
            bundle, applied = apply_items(loaded.base, frame, strict=False)
            loaded = replace(loaded, engine=Engine(bundle))
            log.info(
                "Catalogue changes applied to version %s: %d new items, %d updated, "
                "%d skipped (updates of items this model does not have)",
                loaded.version,
                len(applied.added),
                len(applied.updated),
                len(applied.skipped),
            )
        return replace(loaded, changes=size)

    def _catch_up(self) -> None:
        """Catalogue changes written since (by any worker) applied to every model served."""
        size = self.changes.size()
        if self.current is not None and self.current.changes != size:
            self.current = self._with_changes(self.current)
        trial = self.trial
        if trial is not None and trial.loaded.changes != size:
            self.trial = replace(trial, loaded=self._with_changes(trial.loaded))

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.serving.reload_seconds):
            self.reload()

    def __is_ready__(self) -> bool:
        """Ready while a model is loaded. Otherwise /readyz answers 503 with the same JSON
        body as the endpoints (BentoML would say only "not ready"): the exception's
        detail is the body, its headers make it JSON."""
        if self.current is not None:
            return True
        body, headers = self.not_ready_body(self._cause)
        raise HTTPException(
            HTTPStatus.SERVICE_UNAVAILABLE,
            json.dumps(body),
            headers | {"Content-Type": "application/json"},
        )

    def not_ready_body(self, cause: str) -> tuple[dict[str, object], dict[str, str]]:
        """What a client hears while no model is served: the cause and when to retry."""
        wait = int(self.settings.serving.reload_seconds)
        body = {"error": "no model is being served", "cause": cause, "retry_after_seconds": wait}
        return body, {"Retry-After": str(wait)}

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        self._stop.set()
        self.watch.close()
        self.predictions.close()

    # --- helpers ----------------------------------------------------------------------

    def _model(self) -> store.Loaded:
        """The champion (what /metadata and the catalogue admin speak of)."""
        current = self.current
        if current is None:
            raise NotReadyError(self._cause)
        return current

    def _assigned(self, unit: str | None) -> Assigned:
        """The model answering ``unit`` (a customer, else a session; None: neither): the
        challenger for its share of them while an experiment runs, else the champion."""
        current, trial = self._model(), self.trial
        if trial is None:
            return Assigned(current, CHAMPION, None)
        if assign(trial.experiment, unit) == CHALLENGER:
            return Assigned(trial.loaded, CHALLENGER, trial.experiment.salt)
        return Assigned(current, CHAMPION, trial.experiment.salt)

    def _customer(self, user_id: str | None) -> str | None:
        """The id the model and the logs know the customer (or a visitor's session) by."""
        if user_id is None or self._key is None:
            return user_id
        return pseudonym(user_id, self._key)

    def _check_key(self, ctx: bentoml.Context) -> None:
        expected = self.settings.api_key
        if expected is None:
            return
        headers = ctx.request.headers
        bearer = headers.get("authorization", "")
        given = headers.get("x-api-key") or (bearer[7:] if bearer[:7].lower() == "bearer " else "")
        if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
            why = "no API key" if not given else "the API key is not the service's"
            raise ApiError(
                HTTPStatus.UNAUTHORIZED,
                f"{why}: send it as the x-api-key header (or Authorization: Bearer <key>)",
            )

    def _respond(
        self,
        endpoint: ListEndpoint,
        to: Assigned,
        answering: Callable[[], Answer],
        started: float,
        user_id: str | None,
        session_id: str | None,
        context: dict,
    ) -> Recommendations:
        """The answer ``answering`` computes, logged (:meth:`_logged`), as a list."""
        request_id, answer = self._logged(
            endpoint, to, answering, started, user_id, session_id, context
        )
        items = [
            Item(item_id=s.item_id, score=round(s.score, 6), reason=s.reason) for s in answer.items
        ]
        return Recommendations(
            request_id=request_id,
            model_version=to.loaded.version,
            variant=to.variant,
            items=items,
            warnings=answer.warnings,
            cold_start=answer.cold_start,
        )

    def _logged(
        self,
        endpoint: ListEndpoint,
        to: Assigned,
        answering: Callable[[], A],
        started: float,
        user_id: str | None,
        session_id: str | None,
        context: dict,
    ) -> tuple[str, A]:
        """The answer ``answering`` computes and its request id, logged with who
        answered. A request that fails on the service's side is logged too (``error``,
        no items): an experiment's error-rate guardrail counts it against its variant."""
        request_id = uuid.uuid4().hex

        def log(answer: Answer | None, error: str | None = None) -> None:
            shown = answer.items if answer else []
            self.predictions.append(
                Served(
                    request_id=request_id,
                    endpoint=endpoint,
                    user_id=user_id,
                    session_id=session_id,
                    items=[s.item_id for s in shown],
                    scores=[round(s.score, 6) for s in shown],
                    model_version=to.loaded.version,
                    variant=to.variant,
                    experiment=to.experiment,
                    cold_start=bool(answer and answer.cold_start),
                    latency_ms=round((time.perf_counter() - started) * 1000, 3),
                    error=error,
                    **context,
                )
            )

        try:
            answer = answering()
        except Exception as exc:
            refused = isinstance(exc, ApiError) or (
                isinstance(exc, BentoMLException) and exc.error_code < 500
            )
            if not refused:  # a failure on the service's side: logged against the variant
                log(None, type(exc).__name__)
            raise
        log(answer)
        return request_id, answer

    # --- endpoints --------------------------------------------------------------------

    @bentoml.api(route="/recommend")
    @json_errors
    async def recommend(
        self,
        user_id: Id | None = None,
        k: K = 10,
        filters: FiltersIn = NO_FILTERS,
        attributes: Attributes | None = None,
        exclude_purchased: bool | None = None,
        session_id: SessionId | None = None,
        recent_items: Annotated[list[Id], Field(max_length=MAX_LIST)] | None = None,
    ) -> Recommendations:
        """Personalised top-k for a customer (cold start through attributes or popularity).
        ``exclude_purchased`` defaults to the shop's objective (discovery: true). The
        session leads the answer: ``recent_items`` (oldest first), else the latest events
        /events took for ``session_id``."""
        user_id, session_id = self._customer(user_id), self._customer(session_id)
        started, to = time.perf_counter(), self._assigned(user_id or session_id)
        recent = list(recent_items or []) or self._session_items(session_id)
        return self._respond(
            "recommend",
            to,
            lambda: to.loaded.engine.recommend(
                user_id, k, filters.policy(), attributes, exclude_purchased, recent
            ),
            started,
            user_id,
            session_id,
            {},
        )

    @bentoml.api(route="/cross_sell")
    @json_errors
    async def cross_sell(
        self,
        cart: Annotated[list[Id], Field(min_length=1, max_length=MAX_LIST)],
        user_id: Id | None = None,
        k: K = 10,
        filters: FiltersIn = NO_FILTERS,
        attributes: Attributes | None = None,
        session_id: SessionId | None = None,
        recent_items: Annotated[list[Id], Field(max_length=MAX_LIST)] | None = None,
    ) -> Recommendations:
        """Items that complete a cart: co-purchase rules plus the customer's affinity,
        tipped by the session (``recent_items``, oldest first, else the latest events
        /events took for ``session_id``)."""
        user_id, session_id = self._customer(user_id), self._customer(session_id)
        started, to = time.perf_counter(), self._assigned(user_id or session_id)
        recent = list(recent_items or []) or self._session_items(session_id)
        return self._respond(
            "cross_sell",
            to,
            lambda: to.loaded.engine.cross_sell(
                cart, user_id, k, filters.policy(), attributes, recent
            ),
            started,
            user_id,
            session_id,
            {"cart": cart},
        )

    @bentoml.api(route="/bundle")
    @json_errors
    async def bundle(
        self,
        item_id: Id | None = None,
        cart: Annotated[list[Id], Field(min_length=1, max_length=MAX_LIST)] | None = None,
        user_id: Id | None = None,
        k_items: Annotated[
            int, Field(ge=2, le=4, description="items the pack adds to the anchor, 2..4")
        ] = 3,
        attributes: Attributes | None = None,
        session_id: SessionId | None = None,
    ) -> BundleAnswer:
        """A pack that completes an item (or a cart): items bought together with it in
        the same orders, the whole pack's co-occurrence and the customer's affinity, never
        out of stock, never two substitutes; priced with the configured discount, cut to
        keep the margin floor where items carry a margin (docs/promotions.md)."""
        if (item_id is None) == (cart is None):
            raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, "give exactly one of item_id and cart")
        anchor = [item_id] if item_id is not None else list(cart or [])
        user_id, session_id = self._customer(user_id), self._customer(session_id)
        started, to = time.perf_counter(), self._assigned(user_id or session_id)
        request_id, pack = self._logged(
            "bundle",
            to,
            lambda: to.loaded.engine.pack(anchor, user_id, k_items, STOCKED, attributes),
            started,
            user_id,
            session_id,
            {"cart": anchor},
        )
        n = len(pack.anchor)
        cost = pack.price
        return BundleAnswer(
            request_id=request_id,
            model_version=to.loaded.version,
            variant=to.variant,
            anchor=pack.anchor,
            anchor_prices=pack.prices[:n],
            items=[
                BundleItem(item_id=s.item_id, score=round(s.score, 6), reason=s.reason, price=p)
                for s, p in zip(pack.items, pack.prices[n:], strict=True)
            ],
            price=None
            if cost is None
            else BundlePrice(
                full=cost.full, price=cost.price, discount=round(cost.discount, 4), note=cost.note
            ),
            warnings=pack.warnings,
            cold_start=pack.cold_start,
        )

    @bentoml.api(route="/upsell")
    @json_errors
    async def upsell(
        self,
        item_id: Id,
        user_id: Id | None = None,
        k: K = 10,
        max_price_ratio: Annotated[float, Field(gt=1, le=100, allow_inf_nan=False)] | None = None,
        filters: FiltersIn = NO_FILTERS,
        attributes: Attributes | None = None,
        session_id: SessionId | None = None,
    ) -> Recommendations:
        """Pricier alternatives to an item in its category, best first."""
        user_id, session_id = self._customer(user_id), self._customer(session_id)
        started, to = time.perf_counter(), self._assigned(user_id or session_id)
        return self._respond(
            "upsell",
            to,
            lambda: to.loaded.engine.upsell(
                item_id, user_id, k, max_price_ratio, filters.policy(), attributes
            ),
            started,
            user_id,
            session_id,
            {"anchor": item_id},
        )

    @bentoml.api(route="/similar_items")
    @json_errors
    async def similar_items(
        self,
        item_id: Id,
        k: K = 10,
        filters: FiltersIn = NO_FILTERS,
        session_id: SessionId | None = None,
    ) -> Recommendations:
        """Items closest to an item in the model's embedding space."""
        session_id = self._customer(session_id)
        started, to = time.perf_counter(), self._assigned(session_id)
        return self._respond(
            "similar_items",
            to,
            lambda: to.loaded.engine.similar(item_id, k, filters.policy()),
            started,
            None,
            session_id,
            {"anchor": item_id},
        )

    @bentoml.api(route="/popular")
    @json_errors
    async def popular(
        self,
        k: K = 10,
        category: Id | None = None,
        filters: FiltersIn = NO_FILTERS,
        session_id: SessionId | None = None,
    ) -> Recommendations:
        """The shop's best sellers, overall or in one category."""
        session_id = self._customer(session_id)
        started, to = time.perf_counter(), self._assigned(session_id)
        return self._respond(
            "popular",
            to,
            lambda: to.loaded.engine.popular(k, category, filters.policy()),
            started,
            None,
            session_id,
            {"category": category},
        )

    @bentoml.api(route="/feedback")
    @json_errors
    async def feedback(
        self,
        request_id: Id,
        user_id: Id,
        item_id: Id,
        event: FeedbackEvent,
        ctx: bentoml.Context,
        quantity: Annotated[int, Field(ge=1, le=100_000)] = 1,
        unit_price: Price | None = None,
    ) -> FeedbackAck:
        """What the customer did with a recommendation (appended to the prediction log).
        A purchase carries its quantity and unit price: attribution credits the answer
        ``request_id`` names with it (one without a price is counted, not credited)."""
        self._check_key(ctx)
        self.predictions.append(
            Feedback(
                request_id=request_id,
                user_id=self._customer(user_id),
                item_id=item_id,
                event=event,
                quantity=quantity if event == "purchase" else None,
                unit_price=unit_price if event == "purchase" else None,
            )
        )
        return FeedbackAck(request_id=request_id)

    @bentoml.api(route="/events")
    @json_errors
    def events(self, events: list[Any], ctx: bentoml.Context) -> EventsAck:
        """What shoppers do as it happens: views, carts and purchases, in batches of up to
        ``serving.max_events`` (more: 413). Each event is checked with ingestion's rules
        (against the served catalogue) and needs an ``event_id``: one already stored is
        not stored again, so a batch whose answer was lost can be sent again. Refused
        events are listed with their reason and kept in quarantine. The answer comes
        once the batch is on disk."""
        self._check_key(ctx)
        most = self.settings.serving.max_events
        if len(events) > most:
            raise ApiError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"{len(events)} events in one request: send at most {most} per request",
            )
        catalogue = self._model().engine.bundle.catalogue
        items = pd.DataFrame({"item_id": catalogue.item_ids, "price": catalogue.price})
        batch = check_events(events, items, customer=self._customer if self._key else None)
        stored = live_events.append(self._event_store(), batch.accepted, batch.rejected)
        if len(batch.rejected):
            log.info("/events: %d of %d events refused", len(batch.rejected), len(events))
        return EventsAck(
            received=len(events),
            accepted=stored,
            duplicates=len(events) - stored - len(batch.rejected),
            rejected=[
                RejectedEvent(position=int(r.position), event_id=r.event_id, reason=r.reason)
                for r in batch.rejected.itertuples(index=False)
            ],
        )

    def _session_items(self, session_id: str | None) -> list[str]:
        """A session's latest items from the event store (every worker sees the same);
        none when there is no session, no store yet, or the store cannot be read (the
        answer then goes without the session, never fails for it)."""
        if session_id is None or not live_events.exists(self.settings.events_url):
            return []
        try:
            return live_events.session_items(
                self._event_store(), session_id, self.settings.serving.session_minutes
            )
        except sa.exc.SQLAlchemyError:
            log.exception("The event store could not be read: answering without the session")
            return []

    def _event_store(self) -> sa.Engine:
        """The live event store, connected on first use (a worker that never takes an
        event never opens it)."""
        if self._events is None:
            self._events = live_events.connect(self.settings.events_url)
        return self._events

    @bentoml.api(route="/metadata")
    @json_errors
    async def metadata(self) -> Metadata:
        """Which model answers: name, version, run, training window, what answers
        /recommend (the blend, or the baseline served while no trained model beats it, and
        why), the objective, catalogue size; and the challenger while an experiment runs."""
        loaded = self._model()
        meta = loaded.metadata
        bundle = loaded.engine.bundle
        return Metadata(
            model_name=self.settings.registered_model,
            model_version=loaded.version,
            run_id=loaded.run_id,
            bento_model=loaded.bento_tag,
            trained_at=meta.get("trained_at", ""),
            dataset=meta.get("dataset", ""),
            data_window={k: meta[k] for k in ("train_start", "cutoff", "test_end") if k in meta},
            served=bundle.served,
            served_because=meta.get("served_because", ""),
            objective=bundle.objective,
            blend={variant(ex): mix.described() for ex, mix in bundle.mixes.items()},
            catalogue_size=len(bundle.catalogue.item_ids),
            known_users=len(bundle.model.user_ids),
            prediction_log={"written": self.predictions.written, "lost": self.predictions.lost},
            experiment=self._experiment_info(),
        )

    def _experiment_info(self) -> ExperimentInfo | None:
        trial = self.trial
        if trial is None:
            return None
        return ExperimentInfo(
            challenger_version=trial.loaded.version,
            share=trial.experiment.share,
            salt=trial.experiment.salt,
        )

    @bentoml.api(route="/audience")
    @json_errors
    async def audience(
        self,
        ctx: bentoml.Context,
        item_id: Id | None = None,
        category: Id | None = None,
        k: Annotated[int, Field(ge=1, le=MAX_AUDIENCE)] = 100,
        segment: Id | None = None,
        exclude_buyers: bool = False,
        brand: Id | None = None,
    ) -> AudienceAnswer:
        """The customers most likely to buy an item (or any item of a category or of a
        brand) soon, best first, for a campaign: item to users through the served answer's terms
        (docs/promotions.md). ``segment`` (a cluster's or an RFM segment's name from
        `cartlift segment`) keeps its customers only; ``exclude_buyers`` leaves out who
        bought the target in the training window. Customer ids are personal data: the API
        key is required (pseudonyms when the service pseudonymises)."""
        self._check_key(ctx)
        if sum(t is not None for t in (item_id, category, brand)) != 1:
            raise ApiError(
                HTTPStatus.UNPROCESSABLE_ENTITY, "give exactly one of item_id, category and brand"
            )
        loaded = self._model()
        engine = loaded.engine
        among = None
        if segment is not None:
            lake = self.settings.dataset_lake(loaded.metadata.get("dataset", ""))
            try:
                members = await asyncio.to_thread(segment_members, lake, segment)  # a file
            except (FileNotFoundError, ValueError) as err:
                raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, f"segment: {err}") from None
            found = engine.users.positions(members)
            among = found[found >= 0]
        answer = engine.audience(k, item_id, category, among, exclude_buyers, brand)
        return AudienceAnswer(
            model_version=loaded.version,
            target=item_id or category or brand or "",
            segment=segment,
            customers=[
                AudienceMember(user_id=c.user_id, score=c.score, reason=c.reason)
                for c in answer.customers
            ],
            warnings=answer.warnings,
        )

    @bentoml.api(route="/admin/items")
    @json_errors
    def admin_items(
        self,
        items: Annotated[list[ItemChange], Field(min_length=1, max_length=MAX_ITEMS)],
        ctx: bentoml.Context,
    ) -> CatalogueAck:
        """Add products or update price, stock, title or margin, without retraining.

        New products need a category and a price; they are served through their features
        until the next training sees them. Stored on disk: every worker picks the change up
        on its next poll, and every later model gets it too.
        """
        self._check_key(ctx)
        records = [i.model_dump(exclude_none=True) for i in items]
        with self._swap:
            loaded = self._model()
            try:  # a dry run on the served catalogue: a refused change is never stored
                _, applied = apply_items(loaded.engine.bundle, pd.DataFrame(records))
            except ValueError as err:
                raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, str(err)) from None
            self.changes.append(records)
            self._catch_up()
        return CatalogueAck(
            model_version=loaded.version, added=list(applied.added), updated=list(applied.updated)
        )

    @bentoml.api(route="/admin/reload")
    @json_errors
    def admin_reload(self, ctx: bentoml.Context) -> dict:
        """Check the registry for a new champion now (instead of waiting for the poller)."""
        self._check_key(ctx)
        return {"model_version": self.reload()}


Cartlift.add_asgi_middleware(BodyLimit, max_bytes=_SERVING.max_request_bytes)
Cartlift.add_asgi_middleware(JsonOnly)
Cartlift.add_asgi_middleware(SpecRewrite)


def _log_counter() -> Callable[[str, int], None]:
    """A Prometheus counter of prediction log records by outcome (written / lost).

    Created in the worker, after BentoML has set up Prometheus' multiprocess directory,
    so ``/metrics`` sums it over all workers."""
    from prometheus_client import Counter

    counter = Counter(
        "cartlift_prediction_log_records",
        "Prediction log records by outcome: written, or lost (disk full, read-only home)",
        ["outcome"],
    )
    return lambda outcome, n: counter.labels(outcome=outcome).inc(n)
