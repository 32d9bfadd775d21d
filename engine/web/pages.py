"""The console's pages: the agent's desk and the supervisors' wallboard (templates/, static/).
They are built on the API and /events; a page needs a logged-in account (else: to /login)."""
from flask import Blueprint, render_template

from engine.web.guard import principal, requires

bp = Blueprint("pages", __name__)


@bp.get("/desk")
@requires("agent")
def desk():
    return render_template("desk.html", me=principal())


@bp.get("/wallboard")
@requires("supervisor")
def wallboard():
    return render_template("wallboard.html", me=principal())
