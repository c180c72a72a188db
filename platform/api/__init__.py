"""The REST API v1, under ``/api/v1``: metadata, records, automation runs, rule checks
and the OpenAPI document.

``bp`` gathers one Flask blueprint per concern; the app registers it once.
"""

from flask import Blueprint

from .approvals import approvals_bp
from .automations import automations_bp
from .meta import meta_bp
from .openapi import openapi_bp
from .records import records_bp
from .rules import rules_bp

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.register_blueprint(meta_bp)
bp.register_blueprint(records_bp)
bp.register_blueprint(openapi_bp)
bp.register_blueprint(automations_bp)
bp.register_blueprint(approvals_bp)
bp.register_blueprint(rules_bp)

__all__ = ["bp"]
