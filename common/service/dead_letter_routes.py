"""The dead-letter routes of the consumer blueprint: list and retry, as JSON for programs and as pages."""
from __future__ import annotations

from flask import Response, flash, jsonify, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response as BaseResponse

from common.service.consumer import bp, followers, json_error


@bp.get("/api/dead-letters")
def dead_letters_api() -> Response:
    """Every followed feed's dead letters, as JSON."""
    return jsonify([letter for f in followers() for letter in f.dead_letters()])


def _retry(letter_id: int) -> None:
    """Retry a dead letter with the follower it belongs to; LookupError when no follower has it."""
    for f in followers():
        if f.dead.owns(letter_id):
            return f.retry_dead_letter(letter_id)
    raise LookupError(f"no dead letter {letter_id}")


@bp.post("/api/dead-letters/<id:letter_id>/retry")
def retry_api(letter_id: int) -> ResponseReturnValue:
    """Retry one dead letter: 200 when handled now, 404 when unknown, 422 when it failed again."""
    try:
        _retry(letter_id)
    except LookupError as exc:
        return json_error(404, str(exc))
    except Exception as exc:
        return json_error(422, f"the retry failed again: {type(exc).__name__}: {exc}", id=letter_id)
    return jsonify({"retried": letter_id, "status": "handled"})


@bp.get("/dead-letters")
def dead_letters_page() -> str:
    """The dead letters of every followed feed, with a retry button each."""
    return render_template("atomshop/dead_letters.html",
                           letters=[letter for f in followers() for letter in f.dead_letters()])


@bp.post("/dead-letters/<id:letter_id>/retry")
def retry_page(letter_id: int) -> BaseResponse:
    """The retry button: retry, say what happened, back to the dead letters."""
    try:
        _retry(letter_id)
    except LookupError as exc:
        flash(str(exc), "error")
    except Exception as exc:
        flash(f"Dead letter {letter_id} failed again: {type(exc).__name__}: {exc}", "error")
    else:
        flash(f"Dead letter {letter_id} handled and removed.", "success")
    return redirect(url_for("consumer.dead_letters_page"))
