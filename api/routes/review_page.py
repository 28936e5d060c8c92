"""`/review`: a server-rendered page where a reviewer labels one queued prediction at a time.

Plain forms: a key entered once sets an HttpOnly, SameSite=Strict cookie (a Bearer header works
too), so a form posted from another site carries no key. Labels go in as feedback with source
`review`, rated 5 when they agree with the model and 1 when they correct it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api import review
from api.auth import Caller, authorize
from core.keys import ADMIN_TOKEN_NAME, Scope
from core.review_queue import NotClassification, window_start
from core.store import review as leases
from core.store.prediction_reads import get_prediction
from core.store.predictions import InvalidLabel, submit_feedback

router = APIRouter(include_in_schema=False)
COOKIE = "tuneloop_review"
WRONG_KEY = "That key is unknown, revoked, or lacks the review scope."


@lru_cache(maxsize=1)
def templates() -> Jinja2Templates:
    """The page templates, found beside the package (created on first use, not at import)."""
    return Jinja2Templates(directory=Path(__file__).parent.parent / "templates")


def reviewer(request: Request, key: str | None = None) -> Caller | None:
    """The caller by a given key, else the Authorization header, else the cookie; None when
    none is a key with the review scope."""
    cookie = request.cookies.get(COOKIE)
    authorization = f"Bearer {key}" if key else request.headers.get("authorization")
    if authorization is None and cookie:
        authorization = f"Bearer {cookie}"
    try:
        return authorize(request.app.state, authorization, Scope.REVIEW)
    except HTTPException:
        return None


@router.get("/review", response_class=HTMLResponse)
async def review_page(request: Request, was: str | None = None) -> Response:
    """The next item for the caller, or the key form."""
    caller = reviewer(request)
    if caller is None:
        error = WRONG_KEY if request.cookies.get(COOKIE) else None
        page = _render(request, {"error": error}, status=401 if error else 200)
        if error:
            page.delete_cookie(COOKIE, path="/review")
        return page
    name = caller.name or ADMIN_TOKEN_NAME
    state = request.app.state
    try:
        item = await _current(state, name) or await _next(state, name)
    except NotClassification as exc:
        return _render(request, {"reviewer": name, "error": f"review is for classifiers: {exc}"})
    champion = await run_in_threadpool(state.registry.champion)
    since = champion and await run_in_threadpool(
        window_start, state.db, champion, window=state.settings.monitor.window_size
    )
    tally = await run_in_threadpool(
        leases.tally,
        state.db,
        version=champion.version if champion else "",
        since=since or None,
        reviewer=name,
    )
    estimate = "none yet" if tally.agreement is None else f"{tally.agreement:.2f}"
    scores = sorted((item or {}).get("scores", {}).items(), key=lambda kv: -kv[1])
    context = {
        "reviewer": name,
        "item": item,
        "labels": list((item or {}).get("scores", {})),
        "scores": scores,
        "tally": tally,
        "estimate": estimate,
        "was": was,
    }
    return _render(request, context)


@router.post("/review/login")
async def login(request: Request) -> Response:
    """Check the key and keep it in a cookie this page alone receives."""
    key = _form(await request.body()).get("key", "").strip()
    if not key or reviewer(request, key) is None:
        return _render(request, {"error": WRONG_KEY}, status=401)
    page = RedirectResponse("/review", status_code=303)
    page.set_cookie(
        COOKIE,
        key,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/review",
    )
    return page


@router.post("/review/logout")
async def logout() -> Response:
    """Forget the key."""
    page = RedirectResponse("/review", status_code=303)
    page.delete_cookie(COOKIE, path="/review")
    return page


@router.post("/review/label")
async def label(request: Request) -> Response:
    """Store the reviewer's label as review feedback; on to the next item."""
    caller = reviewer(request)
    if caller is None:
        return _render(request, {"error": WRONG_KEY}, status=401)
    form = _form(await request.body())
    prediction_id, given = form.get("prediction_id", ""), form.get("label", "")
    db = request.app.state.db
    found = await run_in_threadpool(get_prediction, db, prediction_id)
    if found is None or not given:
        raise HTTPException(status_code=422, detail="give a queued prediction_id and a label")
    try:
        await run_in_threadpool(
            submit_feedback,
            db,
            prediction_id=prediction_id,
            rating=5 if given == found["output"].get("label") else 1,
            label=given,
            key_name=caller.name,
            source="review",
        )
    except InvalidLabel as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return RedirectResponse(f"/review?was={form.get('was', '')}", status_code=303)


@router.post("/review/skip")
async def skip(request: Request) -> Response:
    """Give the item back to the others; this reviewer is not offered it again."""
    caller = reviewer(request)
    if caller is None:
        return _render(request, {"error": WRONG_KEY}, status=401)
    prediction_id = _form(await request.body()).get("prediction_id", "")
    name = caller.name or ADMIN_TOKEN_NAME
    await run_in_threadpool(leases.release, request.app.state.db, prediction_id, reviewer=name)
    return RedirectResponse("/review", status_code=303)


async def _current(state: Any, name: str) -> dict[str, Any] | None:
    """The oldest item leased to `name` and still unlabeled (a reload shows it again)."""
    held = await run_in_threadpool(leases.held, state.db, reviewer=name)
    for prediction_id, _ in held:
        found = await run_in_threadpool(get_prediction, state.db, prediction_id)
        if found is not None:
            output = found["output"]
            return {
                "prediction_id": prediction_id,
                "text": found["input"],
                "label": output.get("label"),
                "scores": output.get("scores") or {},
                "reason": None,
            }
    return None


async def _next(state: Any, name: str) -> dict[str, Any] | None:
    """Lease one new item to `name`."""
    try:
        items = await review.queue(
            db=state.db,
            registry=state.registry,
            serving=state.serving,
            settings=state.settings,
            n=1,
            reviewer=name,
        )
    except review.NoChampion:
        return None
    return vars(items[0]) if items else None


def _form(body: bytes) -> dict[str, str]:
    """An urlencoded form's fields, the first value of each."""
    fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=20)
    return {name: values[0] for name, values in fields.items()}


def _render(request: Request, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    page = templates().TemplateResponse(
        request, "review.html", {"reviewer": None, "error": None, **context}, status_code=status
    )
    page.headers["Cache-Control"] = "no-store"
    return page
