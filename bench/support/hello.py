"""The baselines of bench/feed_speed.py: Flask's "hello" and a handler doing one INSERT, on the same database setup.

Run under gunicorn like a service: `gunicorn 'bench.support.hello:create_app()'` (DATABASE_URL names the database).
"""
from __future__ import annotations

import os

from flask import Flask, jsonify, request
from sqlalchemy import Integer, Text, insert
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.service.db import Database


class Base(DeclarativeBase):
    pass


class Posted(Base):
    __tablename__ = "posted"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    body: Mapped[str] = mapped_column(Text)


def create_schema(url: str) -> None:
    """The table POST /insert writes to: made once before gunicorn starts, since workers creating it at the same
    time race on PostgreSQL (one fails to boot, and gunicorn's arbiter then stops them all)."""
    db = Database(url, Base)
    db.create_all()
    db.dispose()


def create_app() -> Flask:
    """Flask's "hello" at / (and /health), and POST /insert storing the JSON body with one INSERT."""
    app = Flask(__name__)
    db = Database(os.environ["DATABASE_URL"], Base)

    @app.get("/")
    @app.get("/health")
    def hello():
        return "Hello, World!"

    @app.post("/insert")
    def insert_one():
        body = request.get_data(as_text=True)
        with db.write_engine.begin() as conn:  # BEGIN IMMEDIATE on SQLite, as the services write
            new_id = conn.execute(insert(Posted).values(body=body).returning(Posted.id)).scalar_one()
        return jsonify({"id": new_id}), 201

    return app
