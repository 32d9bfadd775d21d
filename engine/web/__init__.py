"""The web console and the control API: one Flask application served by gevent's WSGI server
inside the engine process (app.py builds it, server.py serves it; see docs/web-api.md)."""
